// Prettier, set to the style the code already had: single quotes, 2 spaces, trailing commas.
// printWidth 160: the code was written to long lines (a statement a line where it fits), and
// clang-format's 140 for native/ is close; measured over src/*.ts, formatting at 160 changed
// 1,738 lines, at 120 3,150, at 240 1,041 (but 240 columns no longer reads as one line anywhere).
/** @type {import('prettier').Config} */
export default {
  singleQuote: true,
  trailingComma: 'all',
  printWidth: 160,
  // YAML's own convention (and Kubernetes' examples) is double quotes.
  overrides: [{ files: ['*.yaml', '*.yml'], options: { singleQuote: false } }],
};
