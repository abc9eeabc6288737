"""Check that hostile text in a generated Python test file is only data.

Usage: inspect_test_file.py TEST_FILE FRAGMENT...

Parses TEST_FILE with `ast` (a syntax error fails the check) and reads it
with `tokenize`. Each FRAGMENT (text an attacker chose) may appear only
inside string tokens, never in code or comments; the only string constant
allowed to hold a fragment is the one assigned to the module-level `VALUES`;
no name `__import__`, `eval` or `exec`, and no attribute `system`, is
referenced anywhere. Prints one violation per line and exits 1 when there
are any.
"""

import ast
import io
import sys
import tokenize

FORBIDDEN_NAMES = {"__import__", "eval", "exec"}
FORBIDDEN_ATTRIBUTES = {"system"}


def main():
    path, fragments = sys.argv[1], sys.argv[2:]
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    tree = ast.parse(source, path)
    violations = []

    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.STRING:
            continue
        for fragment in fragments:
            if fragment in token.string:
                violations.append(
                    f"line {token.start[0]}: {fragment!r} outside a string "
                    f"({tokenize.tok_name[token.type]})"
                )

    allowed = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "VALUES"
            for target in node.targets
        ):
            allowed.update(id(n) for n in ast.walk(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            violations.append(f"line {node.lineno}: the name {node.id}")
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            violations.append(f"line {node.lineno}: the attribute {node.attr}")
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in allowed
        ):
            for fragment in fragments:
                if fragment in node.value:
                    violations.append(
                        f"line {node.lineno}: {fragment!r} in a string that is not VALUES"
                    )

    for violation in violations:
        print(violation)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
