/** The CLI's error boundary: user and environment problems are one line and exit 2; bugs exit 1. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { classify, sanitizeLine } from "../src/cli/errorBoundary.js";
import { UserError } from "../src/util/errors.js";
import { fileError, oneLine, writeFileAtomic } from "../src/util/files.js";

function systemError(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
}

test("user errors: one line per problem, exit 2", () => {
  assert.deepEqual(classify(new UserError("a\nb")), { lines: ["a", "b"], exitCode: 2 });
});

test("operating-system errors name the path and exit 2", () => {
  const e = systemError(() => readFileSync("/nonexistent/dir/file"));
  const o = classify(e);
  assert.equal(o.exitCode, 2);
  assert.deepEqual(o.lines, ["cannot open /nonexistent/dir/file: no such file or directory (ENOENT)"]);
  const w = systemError(() => writeFileAtomic("/nonexistent/dir/file", "x"));
  assert.ok(w instanceof UserError);
  assert.match((w as Error).message, /^cannot write \/nonexistent\/dir\/file: no such file or directory \(ENOENT\)$/);
  assert.match(fileError("read", "/x", e).message, /^cannot read \/x: no such file/);
});

test("SQLite and out-of-memory errors are one line, exit 2", () => {
  const sqlite = Object.assign(new Error("database disk image is malformed"), {
    name: "SqliteError",
    code: "SQLITE_CORRUPT",
  });
  assert.deepEqual(classify(sqlite), {
    lines: ["run store: database disk image is malformed (SQLITE_CORRUPT)"],
    exitCode: 2,
  });
  assert.equal(classify(new RangeError("Array buffer allocation failed")).exitCode, 2);
});

test("anything else is a bug: exit 1 and a one-line 'this is a bug' message without the stack", () => {
  const o = classify(new TypeError("Cannot read properties of undefined (reading 'x')"));
  assert.equal(o.exitCode, 1);
  assert.equal(o.lines.length, 1);
  assert.match(o.lines[0], /internal error, this is a bug in gcx \(TypeError: Cannot read properties.*--debug/);
  assert.doesNotMatch(o.lines[0], /\n|\s+at /);
});

test("terminal control characters are removed from printed lines; oneLine escapes them", () => {
  assert.equal(sanitizeLine("a\u001b[2Jb\u0007c\rd"), "ab?c?d");
  assert.equal(oneLine("a\nb\u0000"), "a\\nb\\u0000");
});
