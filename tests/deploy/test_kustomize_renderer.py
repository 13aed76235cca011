"""tests/support/kustomize.py: the kustomize subset the manifests use, on small kustomizations."""

from pathlib import Path

import pytest
import yaml

from tests.support.kustomize import KustomizeError, build

pytestmark = pytest.mark.unit

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "whistle",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    }
                ]
            },
        },
    },
}
CUSTOM = {
    "apiVersion": "example.org/v1",
    "kind": "Thing",
    "metadata": {"name": "thing"},
    "spec": {"items": [1, 2, 3], "size": {"cpu": "1", "memory": "1Gi"}},
}


def write(path: Path, *documents: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(documents), encoding="utf-8")


@pytest.fixture
def base(tmp_path: Path) -> Path:
    write(tmp_path / "base" / "things.yaml", DEPLOYMENT, CUSTOM)
    write(tmp_path / "base" / "kustomization.yaml", {"resources": ["things.yaml"]})
    return tmp_path / "base"


def overlay(root: Path, kustomization: dict[str, object], **patches: object) -> Path:
    directory = root / "overlay"
    for name, patch in patches.items():
        write(directory / f"{name}.yaml", patch)
    write(directory / "kustomization.yaml", {"resources": ["../base"], **kustomization})
    return directory


def test_namespace_labels_images_and_replicas(base: Path) -> None:
    directory = overlay(
        base.parent,
        {
            "namespace": "whistle",
            "labels": [{"pairs": {"tier": "small"}, "includeSelectors": False}],
            "images": [{"name": "whistle", "newName": "registry/whistle", "newTag": "1.2"}],
            "replicas": [{"name": "web", "count": 3}],
        },
    )
    deployment, custom = build(directory)
    assert deployment["metadata"] == {
        "name": "web",
        "namespace": "whistle",
        "labels": {"tier": "small"},
    }
    # Labels without includeSelectors leave selectors and pod templates alone.
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "web"}
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry/whistle:1.2"
    )
    assert deployment["spec"]["replicas"] == 3
    assert custom["metadata"]["namespace"] == "whistle"


def test_a_strategic_merge_patch_merges_containers_and_env_by_name(base: Path) -> None:
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}],
                        }
                    ]
                }
            }
        },
    }
    (deployment, _) = build(overlay(base.parent, {"patches": [{"path": "p.yaml"}]}, p=patch))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "whistle"
    # kustomize's order: the patch's items first, then the base's others.
    assert container["env"] == [
        {"name": "B", "value": "two"},
        {"name": "C", "value": "3"},
        {"name": "A", "value": "1"},
    ]


def test_a_patch_of_a_custom_resource_is_a_json_merge_patch(base: Path) -> None:
    patch = {
        "apiVersion": "example.org/v1",
        "kind": "Thing",
        "metadata": {"name": "thing"},
        "spec": {"items": [9], "size": {"cpu": "2", "memory": None}},
    }
    (_, custom) = build(overlay(base.parent, {"patches": [{"path": "p.yaml"}]}, p=patch))
    assert custom["spec"] == {"items": [9], "size": {"cpu": "2"}}


def test_what_it_does_not_support_is_refused_not_ignored(base: Path) -> None:
    with pytest.raises(KustomizeError, match="namePrefix"):
        build(overlay(base.parent, {"namePrefix": "x-"}))
    with pytest.raises(KustomizeError, match="includeSelectors"):
        build(overlay(base.parent, {"labels": [{"pairs": {"a": "b"}, "includeSelectors": True}]}))


def test_a_patch_or_replica_count_that_matches_nothing_is_an_error(base: Path) -> None:
    stray = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nope"}}
    with pytest.raises(KustomizeError, match="matches nothing"):
        build(overlay(base.parent, {"patches": [{"path": "p.yaml"}]}, p=stray))
    with pytest.raises(KustomizeError, match="matches no workload"):
        build(overlay(base.parent, {"replicas": [{"name": "nope", "count": 2}]}))
