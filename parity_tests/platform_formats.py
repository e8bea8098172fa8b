"""The results.json formats of Gradescope and PrairieLearn, written down from their published specifications as small
schemas, and a validator for them (a subset of JSON Schema: type, enum, required, properties, additionalProperties,
items, minimum, maximum), so that the tests hold every results.json the checker writes to the platform's format.

Gradescope, https://gradescope-autograders.readthedocs.io/en/latest/specs/ ("Output format"): every field is optional,
but a score must be given at the top level or on every test ("score: optional, but required if not on each test
case"); the top-level score overrides the tests' total. Visibility is one of hidden, after_due_date, after_published,
visible; the formats of output strings are text, html, simple_format, md, ansi; a test's status is passed or failed;
a leaderboard entry has a name, a value and an optional order.

PrairieLearn, https://prairielearn.readthedocs.io/en/latest/externalGrading/ ("Grading results"): ``score`` in
[0, 1] is the one field required of a gradable submission; ``"gradable": false`` needs none (and may carry
``format_errors``, a string or a list of them); other keys are allowed; the file is at most 1 MB. The tests (as
``<pl-external-grader-results>`` renders them) have a name, description, points, max_points, message, output and
images; an image is an object with a ``url`` (and a ``label``) or, in older graders, the URL as a string.
"""

import json

TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "number": (int, float)}

VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
TEXT_FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
NUMBER, STRING, OBJECT = {"type": "number"}, {"type": "string"}, {"type": "object"}

GRADESCOPE_TEST = {"type": "object", "additionalProperties": False, "properties": {
    "score": NUMBER, "max_score": NUMBER, "status": {"enum": ["passed", "failed"]}, "name": STRING,
    "name_format": TEXT_FORMAT, "number": STRING, "output": STRING, "output_format": TEXT_FORMAT,
    "tags": {"type": "array", "items": STRING}, "visibility": VISIBILITY, "extra_data": OBJECT}}
GRADESCOPE = {"type": "object", "additionalProperties": False, "properties": {
    "score": NUMBER, "execution_time": NUMBER, "output": STRING, "output_format": TEXT_FORMAT,
    "test_output_format": TEXT_FORMAT, "test_name_format": TEXT_FORMAT, "visibility": VISIBILITY,
    "stdout_visibility": VISIBILITY, "extra_data": OBJECT, "tests": {"type": "array", "items": GRADESCOPE_TEST},
    "leaderboard": {"type": "array", "items": {
        "type": "object", "required": ["name", "value"], "additionalProperties": False,
        "properties": {"name": STRING, "value": {"type": ["number", "string"]}, "order": {"enum": ["asc", "desc"]}}}}}}

IMAGES = {"type": "array", "items": {"type": ["object", "string"], "required": ["url"],
                                     "properties": {"url": STRING, "label": STRING}}}
PRAIRIELEARN_TEST = {"type": "object", "properties": {
    "name": STRING, "description": STRING, "points": NUMBER, "max_points": NUMBER, "message": STRING, "output": STRING,
    "images": IMAGES}}
PRAIRIELEARN = {"type": "object", "properties": {
    "gradable": {"type": "boolean"}, "score": {"type": "number", "minimum": 0, "maximum": 1}, "message": STRING,
    "output": STRING, "format_errors": {"type": ["string", "array"], "items": STRING}, "images": IMAGES,
    "tests": {"type": "array", "items": PRAIRIELEARN_TEST}}}
PRAIRIELEARN_LIMIT = 1 << 20


def _is(value, kind: str) -> bool:
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, TYPES[kind])


def validate(value, schema: dict, where: str = "$") -> list[str]:
    """Every way ``value`` departs from ``schema``, each as 'path: problem' (empty when it conforms)."""
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if kinds and not any(_is(value, kind) for kind in kinds):
        return [f"{where}: expected {' or '.join(kinds)}, got {type(value).__name__} {value!r:.60}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: expected one of {schema['enum']}, got {value!r}"]
    errors = []
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        errors += [f"{where}: '{key}' is required" for key in schema.get("required", []) if key not in value]
        if schema.get("additionalProperties") is False:
            errors += [f"{where}: '{key}' is not a field of this format" for key in value if key not in properties]
        for key, item in value.items():
            if key in properties:
                errors += validate(item, properties[key], f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += validate(item, schema["items"], f"{where}[{index}]")
    return errors


def gradescope_errors(document) -> list[str]:
    """How a Gradescope results.json departs from the specification."""
    errors = validate(document, GRADESCOPE)
    tests = document.get("tests", []) if isinstance(document, dict) else []
    if not errors and "score" not in document and not (tests and all("score" in test for test in tests)):
        errors.append("$: a score is required at the top level or on every test")
    return errors


def prairielearn_errors(document) -> list[str]:
    """How a PrairieLearn external grader results.json departs from the documentation."""
    errors = validate(document, PRAIRIELEARN)
    if not errors and document.get("gradable", True) and "score" not in document:
        errors.append("$: 'score' is required of a gradable submission")
    if len(json.dumps(document).encode()) > PRAIRIELEARN_LIMIT:
        errors.append(f"$: larger than PrairieLearn's {PRAIRIELEARN_LIMIT} bytes")
    return errors
