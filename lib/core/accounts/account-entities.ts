import { getMetadataArgsStorage, type ColumnOptions, type ValueTransformer } from 'typeorm';
import { TwoFactorAuthConfigError } from '../options/two-factor-auth.options-validation.js';
import type {
  TwoFactorAccountsOptions,
  TwoFactorEntityClass,
} from '../options/two-factor-auth.options.js';
import { Account } from './account.entity.js';

/** `accounts` with every field name filled in. */
export interface ResolvedAccounts {
  entity: TwoFactorEntityClass;
  fields: { id: string; username: string; passwordHash: string; disabled: string | undefined };
}

/**
 * The accounts entity of this process. TypeORM builds entity metadata from decorators, which
 * run once per process; the module's tables reference the accounts entity through lazy
 * relation targets and column options that read this, so the same entity classes serve the
 * default store (`tfa_accounts`) and an application's own users table. One process, one
 * accounts entity: configuring a second one is refused.
 */
let configured: ResolvedAccounts | undefined;

/** The entity holding the login name, password hash and disabled flag. */
export function accountsEntity(): TwoFactorEntityClass {
  return configured?.entity ?? Account;
}

/** The configured own-users setting, or `undefined` for the default store. */
export function ownAccounts(): ResolvedAccounts | undefined {
  return configured;
}

/**
 * Account ids reach the module as strings (`sub` is the id's string form); an integer column
 * hands back numbers, turned into strings here so every comparison sees one type.
 */
const idAsString: ValueTransformer = {
  to: (value: unknown) => value,
  from: (value: unknown) => (value === null || value === undefined ? value : String(value)),
};

/**
 * Options of a column that holds an account id: `varchar(36)` for the default store, the type
 * of the application's id column otherwise (read when the DataSource builds its metadata, so
 * foreign keys to the app's table have matching types).
 */
export function accountIdColumn(name: string, extra: ColumnOptions = {}): ColumnOptions {
  return {
    name,
    ...extra,
    transformer: idAsString,
    get type() {
      return (idColumnOptions()?.type ?? 'varchar') as ColumnOptions['type'];
    },
    get length() {
      const own = idColumnOptions();
      return own ? own.length : 36;
    },
    get unsigned() {
      return idColumnOptions()?.unsigned;
    },
  } as ColumnOptions;
}

function idColumnOptions(): ColumnOptions | undefined {
  if (!configured) return undefined;
  return findColumn(configured.entity, configured.fields.id)?.options as ColumnOptions;
}

function findColumn(entity: TwoFactorEntityClass, property: string) {
  const storage = getMetadataArgsStorage();
  for (let target: unknown = entity; typeof target === 'function';) {
    const column = storage.columns.find((c) => c.target === target && c.propertyName === property);
    if (column) return column;
    target = Object.getPrototypeOf(target);
  }
  return undefined;
}

/**
 * Checks `accounts` (an entity class whose mapped fields are columns, the id the primary one)
 * and makes it this process's accounts entity.
 * @throws TwoFactorAuthConfigError naming the field that is wrong.
 */
export function configureAccounts(
  raw: TwoFactorAccountsOptions | undefined,
): ResolvedAccounts | undefined {
  if (raw === undefined) return configured;
  const resolved = resolveAccounts(raw);
  if (configured && configured.entity !== resolved.entity) {
    throw new TwoFactorAuthConfigError(
      'accounts.entity',
      `is ${resolved.entity.name}, but this process already uses ${configured.entity.name}: one application, one accounts entity.`,
    );
  }
  configured = resolved;
  return resolved;
}

function resolveAccounts(raw: TwoFactorAccountsOptions): ResolvedAccounts {
  if (typeof raw !== 'object' || raw === null) {
    throw new TwoFactorAuthConfigError('accounts', 'must be { entity, fields }.');
  }
  const { entity, fields } = raw;
  if (typeof entity !== 'function') {
    throw new TwoFactorAuthConfigError('accounts.entity', 'must be a TypeORM entity class.');
  }
  if (entity === Account) {
    throw new TwoFactorAuthConfigError(
      'accounts.entity',
      'is the module’s own Account: leave `accounts` out to use it.',
    );
  }
  if (!getMetadataArgsStorage().tables.some((t) => t.target === entity)) {
    throw new TwoFactorAuthConfigError(
      'accounts.entity',
      `(${entity.name}) is not decorated with @Entity().`,
    );
  }
  const names = {
    id: fields?.id ?? 'id',
    username: fields?.username ?? 'username',
    passwordHash: fields?.passwordHash ?? 'passwordHash',
    disabled: fields?.disabled,
  };
  for (const [field, property] of Object.entries(names)) {
    if (property === undefined) continue;
    const column = findColumn(entity, property);
    if (!column) {
      throw new TwoFactorAuthConfigError(
        `accounts.fields.${field}`,
        `names "${property}", which is not a column of ${entity.name}.`,
      );
    }
    if (field === 'id' && !column.options.primary) {
      throw new TwoFactorAuthConfigError(
        'accounts.fields.id',
        `names "${property}", which is not the primary column of ${entity.name}.`,
      );
    }
  }
  return { entity: entity as ResolvedAccounts['entity'], fields: names };
}

/**
 * Forgets the configured entity, so that one process can build DataSources for several
 * accounts entities one after the other (the module's own tests do; an application has one).
 */
export function resetAccounts(): void {
  configured = undefined;
}
