"""Validates ebb objects against the openAPIV3Schema of the CRDs `ebb crd --out DIR` wrote,
with jsonschema. Like the API server's strict field validation, a field the schema does not
declare is an error (structural schemas would prune it; JSON Schema would allow it).

usage: validate_against_crds.py CRD_DIR MANIFEST.yaml
Prints `valid KIND/NAME` per ebb object; exits 1 naming each invalid object and field."""

import pathlib
import sys

import jsonschema
import yaml


def strict(schema):
    """The schema with undeclared fields refused wherever it lists properties."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_schemas(directory):
    schemas = {}
    for path in sorted(pathlib.Path(directory).glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        for version in crd["spec"]["versions"]:
            api_version = f'{crd["spec"]["group"]}/{version["name"]}'
            schema = version["schema"]["openAPIV3Schema"]
            schemas[(api_version, crd["spec"]["names"]["kind"])] = strict(schema)
    return schemas


def main():
    schemas = crd_schemas(sys.argv[1])
    objects = [o for o in yaml.safe_load_all(pathlib.Path(sys.argv[2]).read_text()) if o]
    failed = False
    checked = 0
    for obj in objects:
        schema = schemas.get((obj.get("apiVersion"), obj.get("kind")))
        if schema is None:
            continue
        name = f'{obj["kind"]}/{obj.get("metadata", {}).get("name")}'
        # apiVersion, kind and metadata are the API server's, not the CRD schema's.
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        errors = list(jsonschema.Draft7Validator(schema).iter_errors(body))
        for error in errors:
            field = ".".join(str(part) for part in error.absolute_path)
            print(f"invalid {name}: {field}: {error.message}")
        failed |= bool(errors)
        if not errors:
            print(f"valid {name}")
        checked += 1
    if checked == 0:
        print("no ebb objects to validate")
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
