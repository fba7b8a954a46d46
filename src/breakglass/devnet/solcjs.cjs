// Compile a Solidity standard-JSON input read from stdin with the pinned solc-js; print the output.
// Imports ("@openzeppelin/...", relative paths) are resolved against the given base folders.
"use strict";
const fs = require("fs");
const path = require("path");
const bases = JSON.parse(process.argv[2] || "[]");
const solc = require(require.resolve("solc", { paths: bases }));

function findImports(importPath) {
  for (const base of bases) {
    for (const candidate of [path.join(base, importPath), path.join(base, "node_modules", importPath)]) {
      if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
    }
  }
  return { error: "File not found: " + importPath };
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const output = solc.compile(input, { import: findImports });
  process.stdout.write(JSON.stringify({ version: solc.version(), output: JSON.parse(output) }));
});
