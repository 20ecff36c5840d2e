// run.mjs - ctest entry: runs one node test file against a colloq binary, or exits 77
// (skipped) with a message when the npm dependencies were not installed (npm ci).
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const [file, bin, work] = process.argv.slice(2);
if (!fs.existsSync(path.join(here, 'node_modules', 'openai'))) {
  console.log('skipped: tests/server/node_modules is missing (run npm ci in tests/server)');
  process.exit(77);
}
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', path.join(here, file)],
                    { stdio: 'inherit', env: { ...process.env, COLLOQ_BIN: bin, COLLOQ_TEST_DIR: work },
                      timeout: 300000 });
process.exit(r.status ?? 1);
