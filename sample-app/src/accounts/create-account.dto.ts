import { ApiProperty } from '@nestjs/swagger';
import { IsNotEmpty, IsString, MaxLength } from 'class-validator';

/** Body of `POST /accounts`. The module checks the username and password rules. */
export class CreateAccountDto {
  @ApiProperty({ example: 'alice', minLength: 3, maxLength: 64 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(256)
  username!: string;

  @ApiProperty({ example: 'correct horse battery staple', minLength: 8, maxLength: 128 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(1024)
  password!: string;
}

/** Response of `POST /accounts`: the only time the secret key is shown. */
export class CreatedAccountDto {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ example: 'alice' })
  username!: string;

  @ApiProperty({
    description:
      'The second factor. Shown once: store it safely; it cannot be recovered, only rotated.',
    example: 'q3J8xXoVbQ9w2m1ZrT5yKc7uNf0dHgLs4aPeWiBjY6E',
  })
  secretKey!: string;
}
