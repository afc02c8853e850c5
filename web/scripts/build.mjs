// Builds the web client with Vite:
//   1. the shell (index.html) and the standalone widget page (standalone.html)
//      into $WEFT_BUILD_DIR/web/ (hashed files under assets/, one Tailwind CSS);
//   2. each widget in widgets/<name>/index.js into one self-contained ES module,
//      $WEFT_BUILD_DIR/plugins/<name>.web/widget.js (not hashed: weftd serves
//      it with an ETag under /p/<name>/widget.js).
// WEFT_BUILD_DIR defaults to ../build relative to web/.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import tailwindcss from '@tailwindcss/vite';

const webDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = resolve(webDir, process.env.WEFT_BUILD_DIR || '../build');
const logLevel = process.env.WEFT_WEB_LOG || 'warn';
const target = 'es2022';

function widgetNames() {
  const dir = join(webDir, 'widgets');
  return readdirSync(dir)
    .filter((n) => /^[a-z0-9_-]+$/.test(n) && existsSync(join(dir, n, 'index.js')))
    .sort();
}

async function buildApp() {
  const outDir = join(buildDir, 'web');
  await build({
    configFile: false,
    root: webDir,
    base: '/',
    logLevel,
    plugins: [tailwindcss()],
    publicDir: false,
    build: {
      outDir,
      emptyOutDir: true,
      assetsDir: 'assets',
      target,
      rolldownOptions: {
        input: {
          index: join(webDir, 'index.html'),
          standalone: join(webDir, 'standalone.html'),
        },
        output: {
          chunkFileNames: 'assets/shared-[hash].js',
          assetFileNames: (a) =>
            (a.names || []).some((n) => n.endsWith('.css')) ? 'assets/weft-[hash][extname]' : 'assets/[name]-[hash][extname]',
        },
      },
    },
  });
  return outDir;
}

async function buildWidget(name) {
  const outDir = join(buildDir, 'plugins', `${name}.web`);
  await build({
    configFile: false,
    root: webDir,
    logLevel,
    publicDir: false,
    build: {
      outDir,
      emptyOutDir: false,
      target,
      minify: true,
      lib: {
        entry: join(webDir, 'widgets', name, 'index.js'),
        formats: ['es'],
        fileName: () => 'widget.js',
      },
    },
  });
  const file = join(outDir, 'widget.js');
  const src = readFileSync(file, 'utf8');
  // The contract: an ES module exporting mount(el, ctx).
  if (!/export\s*\{[^}]*\bmount\b[^}]*\}|export\s+(async\s+)?function\s+mount\b/.test(src))
    throw new Error(`${file} does not export mount()`);
  if (/\bimport\s*\(|^\s*import\s/m.test(src))
    throw new Error(`${file} is not self-contained (it imports other modules)`);
  return file;
}

const started = Date.now();
const outputs = [await buildApp()];
for (const name of widgetNames()) outputs.push(await buildWidget(name));
for (const f of outputs) {
  const size = statSync(f).isDirectory() ? '' : ` (${statSync(f).size} bytes)`;
  console.log(`web: built ${f}${size}`);
}
console.log(`web: done in ${Date.now() - started} ms`);
