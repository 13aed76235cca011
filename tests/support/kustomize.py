"""A small kustomize renderer: the subset deploy/k8s/ uses, so `make test` needs no binary.

No kustomize renderer installs from PyPI or Debian: PyPI's `kustomize` (0.6.0) generates
manifests from Python, it does not build kustomizations; Debian 12 has no kustomize package,
and its kubectl (`kubernetes-client`, 1.20) embeds a kustomize too old for the `labels` field.
So the tests build the overlays here. What is supported is
what the manifests use, and anything else in a kustomization is refused rather than ignored:

- `resources`: YAML files (one or more documents) and directories holding a kustomization;
- `namespace`: set on every namespaced resource;
- `labels` with `includeSelectors: false`: added to each resource's `metadata.labels` only;
- `images`: `newName` / `newTag` for containers whose image has that name;
- `replicas`: `spec.replicas` of the named workload;
- `patches` with `path`: strategic merge patches found by kind and name. For the built-in kinds
  the lists Kubernetes merges by key (containers, env, ports, volumes, volume mounts) are merged
  by that key; for custom resources a patch is a JSON merge patch (lists are replaced), which
  is what kustomize does for kinds it has no schema for.

tests/deploy/test_k8s_manifests.py checks the result against `kubectl kustomize` where that
binary exists.
"""

import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "replicas",
    "patches",
}
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "ClusterTriggerAuthentication",
}
BUILT_IN_GROUPS = {"v1", "apps/v1", "policy/v1", "networking.k8s.io/v1", "batch/v1"}
# Strategic merge keys of the lists the manifests patch (from the Kubernetes API types).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "ReplicaSet"}


class KustomizeError(ValueError):
    pass


def resource_id(resource: Resource) -> tuple[str, str, str]:
    return (resource["apiVersion"], resource["kind"], resource["metadata"]["name"])


def load_documents(path: Path) -> list[Resource]:
    documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    for document in documents:
        if not isinstance(document, dict) or "kind" not in document:
            raise KustomizeError(f"{path}: every document must be a Kubernetes object")
    return documents


def build(directory: Path) -> list[Resource]:
    """The resources `kustomize build directory` would print (in the order they were listed)."""
    kustomization = _read_kustomization(directory)
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            resources.extend(build(target))
        else:
            resources.extend(load_documents(target))
    _refuse_duplicates(resources, directory)
    for patch_entry in kustomization.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise KustomizeError(f"{directory}: only `patches: - path:` entries are supported")
        for patch in load_documents(directory / patch_entry["path"]):
            _apply_patch(resources, patch, directory)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED_KINDS:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    for label_set in kustomization.get("labels", []):
        if label_set.get("includeSelectors", False) or label_set.get("includeTemplates", False):
            raise KustomizeError(f"{directory}: only labels with includeSelectors: false")
        for resource in resources:
            resource["metadata"].setdefault("labels", {}).update(label_set["pairs"])
    for image in kustomization.get("images", []):
        for resource in resources:
            _set_image(resource, image)
    for replica in kustomization.get("replicas", []):
        _set_replicas(resources, replica, directory)
    return resources


def _read_kustomization(directory: Path) -> dict[str, Any]:
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    kustomization = yaml.safe_load(path.read_text(encoding="utf-8"))
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise KustomizeError(f"{path}: unsupported fields {sorted(unsupported)}")
    return dict(kustomization)


def _refuse_duplicates(resources: list[Resource], directory: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for resource in resources:
        key = resource_id(resource)
        if key in seen:
            raise KustomizeError(f"{directory}: {key} is listed twice")
        seen.add(key)


def _apply_patch(resources: list[Resource], patch: Resource, directory: Path) -> None:
    group = patch["apiVersion"].split("/")[0] if "/" in patch["apiVersion"] else ""
    for index, resource in enumerate(resources):
        same_group = (
            resource["apiVersion"].split("/")[0] if "/" in resource["apiVersion"] else ""
        ) == group
        if (
            same_group
            and resource["kind"] == patch["kind"]
            and resource["metadata"]["name"] == patch["metadata"]["name"]
        ):
            strategic = resource["apiVersion"] in BUILT_IN_GROUPS
            resources[index] = merge(resource, patch, strategic=strategic)
            return
    raise KustomizeError(
        f"{directory}: patch for {patch['kind']} {patch['metadata']['name']} matches nothing"
    )


def merge(base: Any, patch: Any, *, strategic: bool, field: str = "") -> Any:
    """A strategic merge patch (built-in kinds) or a JSON merge patch (custom resources)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = merge(merged[key], value, strategic=strategic, field=key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if strategic and isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        return _merge_by_key(base, patch, MERGE_KEYS[field])
    return copy.deepcopy(patch)


def _merge_by_key(base: list[Any], patch: list[Any], key: str) -> list[Any]:
    # As kustomize orders them: the patch's items first, in the patch's order (merged into
    # their namesakes in the base), then the base's items the patch does not name.
    by_key = {item.get(key): item for item in base}
    named = {item.get(key) for item in patch}
    merged = [
        merge(by_key[item.get(key)], item, strategic=True)
        if item.get(key) in by_key
        else copy.deepcopy(item)
        for item in patch
    ]
    return merged + [copy.deepcopy(item) for item in base if item.get(key) not in named]


def pod_spec(resource: Resource) -> dict[str, Any] | None:
    if resource["kind"] in WORKLOAD_KINDS:
        spec: dict[str, Any] = resource["spec"]["template"]["spec"]
        return spec
    return None


def _set_image(resource: Resource, image: dict[str, str]) -> None:
    spec = pod_spec(resource)
    if spec is None:
        return
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        name, _, tag = container["image"].partition(":")
        if name != image["name"]:
            continue
        container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}".rstrip(":")


def _set_replicas(resources: list[Resource], replica: dict[str, Any], directory: Path) -> None:
    for resource in resources:
        if resource["kind"] in WORKLOAD_KINDS and resource["metadata"]["name"] == replica["name"]:
            resource["spec"]["replicas"] = replica["count"]
            return
    raise KustomizeError(f"{directory}: replicas for {replica['name']} matches no workload")
