"""Validate a YAML file against a JSON schema (draft-07), as the tool that reads it would.

usage: validate_yaml.py SCHEMA FILE [--compose-env ENV_FILE]

With --compose-env, FILE is a Compose file: its string values are first interpolated from
ENV_FILE the way Docker Compose does it, because Compose validates the interpolated file, not
the raw one (for example `name: ${COMPOSE_PROJECT_NAME:-appgear}` only matches the schema's
project-name pattern once it is filled in).

Prints one line per schema error ("FILE: at PATH: message") and exits 1 when there is any;
prints "valid" and exits 0 otherwise; exits 2 when interpolation fails (a `${VAR:?msg}` whose
variable is unset or empty), as Compose would refuse the file too.
Needs: pip install jsonschema pyyaml
"""
import json
import re
import sys

import jsonschema
import yaml


def read_env(path):
    """KEY=VALUE lines of a .env file; '#' lines and blanks skipped, one level of quotes removed."""
    env = {}
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            key = key.strip()
            if key.startswith("export "):
                key = key[len("export "):].strip()
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            env[key] = value
    return env


# $$, ${NAME}, ${NAME<op>WORD} with op one of :- - :? ? :+ +, and $NAME: Compose's syntax.
TOKEN = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<word>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(Exception):
    pass


def interpolate(text, env):
    def sub(m):
        if m.group("escaped"):
            return "$"
        name = m.group("braced") or m.group("named")
        op, word = m.group("op"), m.group("word") or ""
        value = env.get(name)
        unset_or_empty = value is None or value == ""
        missing = unset_or_empty if (op or "").startswith(":") else value is None
        if op in (":-", "-"):
            return word if missing else value
        if op in (":?", "?"):
            if missing:
                raise InterpolationError(f"{name}: {word or 'required variable is missing'}")
            return value
        if op in (":+", "+"):
            return "" if missing else word
        return value or ""

    return TOKEN.sub(sub, text)


def walk(node, env):
    """Interpolates string values (not keys: Compose leaves keys alone)."""
    if isinstance(node, dict):
        return {k: walk(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [walk(v, env) for v in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def main(argv):
    if len(argv) not in (3, 5) or (len(argv) == 5 and argv[3] != "--compose-env"):
        print(__doc__, file=sys.stderr)
        return 2
    schema_path, path = argv[1], argv[2]
    with open(schema_path) as fh:
        schema = json.load(fh)
    with open(path) as fh:
        doc = yaml.safe_load(fh)
    if len(argv) == 5:
        try:
            doc = walk(doc, read_env(argv[4]))
        except InterpolationError as e:
            print(f"{path}: interpolation failed: {e}")
            return 2
    # All three schemas are draft-07; the compose one spells its $schema URL in a way that
    # validator_for does not recognise, so name the draft.
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    for e in errors:
        where = "/".join(map(str, e.absolute_path)) or "(top)"
        print(f"{path}: at {where}: {e.message}")
    if errors:
        return 1
    print("valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
