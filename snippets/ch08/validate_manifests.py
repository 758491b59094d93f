"""Validate Kubernetes manifests offline, built-in kinds and custom resources alike.

Built-in kinds are checked against the Kubernetes schemas that kubernetes-validate
bundles; custom resources against the schemas their projects publish (CRDs, or JSON
Schemas converted from them) in --schemas. Both in strict mode: an unknown or misplaced
field is an error. Unlike kubernetes-validate alone, a custom resource with no schema is
an error too, and so is an apiVersion its CRD does not serve.

    python snippets/ch08/validate_manifests.py snippets/ch08
"""

import argparse
import json
import re
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError
from manifests import Loader, fail, load
from referencing import Registry, Resource

K8S_DEFS = "https://kubernetes.io/api/_definitions.json"
OBJECT_META = {"$ref": K8S_DEFS + "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}


def strict(node, cel):
    """A CRD's OpenAPI schema as strict JSON Schema: what the API server prunes, we reject."""
    if isinstance(node, list):
        return [strict(n, cel) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v, cel) for k, v in node.items()}
    cel[0] += len(node.get("x-kubernetes-validations", []))  # CEL rules: the server runs them
    if "properties" in out and "additionalProperties" not in out \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    for key, sub in out.get("properties", {}).items():
        # Object metadata, which CRDs leave as a bare object, is checked as ObjectMeta.
        if key == "metadata" and sub.get("type") == "object" and "properties" not in sub:
            out["properties"][key] = OBJECT_META
    return out


def describe(path, message):
    """A field path and a message that names the field a strict schema did not expect."""
    unknown = re.match(r"Additional properties are not allowed \((.*) (was|were) unexpected",
                       message)
    where = ".".join(map(str, path)) or "(top)"
    return f"{where}: unknown field {unknown.group(1)}" if unknown else f"{where}: {message}"


def load_schemas(root):
    """{(group, kind in lower case): {version: schema}} from CRD files and JSON Schemas."""
    schemas, cel = {}, [0]
    for f in sorted(Path(root).rglob("*.yaml")):
        crd = yaml.load(f.read_text(), Loader=Loader)
        key = (crd["spec"]["group"], crd["spec"]["names"]["kind"].lower())
        schemas[key] = {v["name"]: strict(v["schema"]["openAPIV3Schema"], cel)
                        for v in crd["spec"]["versions"] if v.get("served")}
    for f in sorted(Path(root).rglob("*.json")):
        kind, _, version = f.stem.rpartition("_")  # <group>/<kind>_<version>.json
        schemas.setdefault((f.parent.name, kind), {})[version] = strict(json.loads(f.read_text()),
                                                                        cel)
    return schemas, cel[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="manifest files or folders of them")
    ap.add_argument("--schemas", default="site-tests/k8s-schemas",
                    help="folder of CRDs (*.yaml) and JSON Schemas (<group>/<kind>_<version>.json)")
    ap.add_argument("--kubernetes-version", default="1.37")
    args = ap.parse_args()
    if not Path(args.schemas).is_dir():
        fail(f"--schemas {args.schemas} is not a folder")
    if not re.fullmatch(r"1\.\d+", args.kubernetes_version):
        fail(f"--kubernetes-version {args.kubernetes_version} is not like 1.37")
    docs = load(args.paths)
    schemas, cel_rules = load_schemas(args.schemas)
    k8s_defs = kubernetes_validate.utils.schema_contents(
        f"kubernetes-json-schema/v{args.kubernetes_version}.0-local-strict/_definitions.json",
        args.kubernetes_version)
    registry = Resource.from_contents(k8s_defs) @ Registry()

    counts, errors, kinds = {"built-in": 0, "custom": 0}, [], set()
    for d in docs:
        group, _, version = d.obj["apiVersion"].rpartition("/")
        try:
            kubernetes_validate.validate(d.obj, args.kubernetes_version, strict=True)
            counts["built-in"] += 1
            continue
        except ValidationError as e:
            errors.append(f"{d.where()}: {describe(e.path, e.message)}")
            continue
        except SchemaNotFoundError:
            pass  # not a built-in kind: a custom resource
        served = schemas.get((group, d.kind.lower()))
        if served is None:
            errors.append(f"{d.where()}: kind: no schema for {d.kind} ({group or 'core'}) "
                          f"in {args.schemas}; add its CRD")
            continue
        if version not in served:
            errors.append(f"{d.where()}: apiVersion: {d.obj['apiVersion']} is not served; "
                          f"the {d.kind} schema has {', '.join(sorted(served))}")
            continue
        validator = jsonschema.Draft202012Validator(served[version], registry=registry)
        err = jsonschema.exceptions.best_match(validator.iter_errors(d.obj))
        if err is not None:
            errors.append(f"{d.where()}: {describe(err.absolute_path, err.message)}")
            continue
        counts["custom"] += 1
        kinds.add(f"{d.kind} {d.obj['apiVersion']}")

    for e in errors:
        print(f"error: {e}", file=sys.stderr, flush=True)
    print(f"{len(docs)} objects: {counts['built-in']} of built-in kinds, {counts['custom']} "
          f"custom resources of {len(kinds)} kinds; {len(errors)} invalid")
    print(f"{cel_rules} CEL rules in the custom resources' schemas are left to the API server")
    print(json.dumps({"objects": len(docs), "builtin": counts["built-in"],
                      "custom": counts["custom"], "custom_kinds": len(kinds),
                      "invalid": len(errors), "cel_rules": cel_rules}))
    raise SystemExit(1 if errors else 0)


if __name__ == "__main__":
    main()
