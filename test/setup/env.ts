// Quiet, deterministic test processes: no development key files, no colours in logs.
process.env.NO_COLOR = '1';
