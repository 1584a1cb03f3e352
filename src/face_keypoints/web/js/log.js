// LiteRT.js's WASM writes its own log (about 20 "INFO: ..." and "WARNING: ..." lines per
// load) to console.error, where a browser shows them as red errors. They are passed on
// at their own level; anything else written to console.error stays an error.

const LEVELS = [["INFO: ", "info"], ["WARNING: ", "warn"]];

/** Route LiteRT.js's INFO and WARNING lines to console.info and console.warn. */
export function quietLiteRtLog() {
  const error = console.error.bind(console);
  console.error = (...args) => {
    const first = typeof args[0] === "string" ? args[0] : "";
    const level = LEVELS.find(([prefix]) => first.startsWith(prefix));
    if (level) console[level[1]](...args);
    else error(...args);
  };
}
