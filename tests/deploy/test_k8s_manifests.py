"""deploy/k8s/: both overlays rendered offline, validated, and held to the rules of a workload.

Rendering is tests/support/kustomize.py (no kustomize binary is packaged for PyPI or Debian);
where `kubectl` is on PATH its own `kubectl kustomize` must print the same resources. Built-in
kinds are validated against the Kubernetes schemas `kubernetes-validate` ships (strict: an
unknown field is an error); the operators' custom resources against tests/deploy/crd_schemas.py.
"""

import importlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.cli.registry import SERVICES
from services.topology import ALL_CONSUMER_QUEUES
from shared.broker.topology import DEAD_LETTER_EXCHANGE
from shared.settings import DEV_JWT_SECRET
from tests.deploy.crd_schemas import SCHEMAS
from tests.support.kustomize import Resource, build, pod_spec, resource_id

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("small", "city")
KUBERNETES_VERSION = "1.31"  # the oldest minor still in upstream support when this was written
# ... and the newest kubernetes-validate ships schemas for, so a field removed since fails too.
KUBERNETES_VERSIONS = (KUBERNETES_VERSION, kubernetes_validate.utils.latest_version())
# The fifth service is the console (issue 12), on its port 8000.
PORTS = {name: entry.default_port for name, entry in SERVICES.items()}
# The four APIs the console calls (the registry also lists the console itself).
APIS = [name for name in SERVICES if name != "console"]
REPLICAS = {"small": 2, "city": 3}
RABBITMQ = "whistle-rabbitmq"
MONGODB = "whistle-mongodb"
# Env variables that carry a credential: they may only come from a Secret.
SENSITIVE = ("SECRET", "KEY", "PASSWORD", "TOKEN", "RABBITMQ_URL", "MONGODB_URL", "SMTP_URL")


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def rendered(overlay: str) -> list[Resource]:
    return build(K8S / "overlays" / overlay)


def of_kind(resources: list[Resource], kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def containers(resource: Resource) -> list[dict[str, Any]]:
    spec = pod_spec(resource)
    assert spec is not None
    return list(spec["containers"])


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against pod labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
        if operator == "NotIn" and labels.get(key) in expression["values"]:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def pod_labels(resource: Resource) -> dict[str, str]:
    return dict(resource["spec"]["template"]["metadata"]["labels"])


def example_secrets() -> dict[str, dict[str, str]]:
    documents = yaml.safe_load_all((K8S / "secrets.example.yaml").read_text(encoding="utf-8"))
    return {doc["metadata"]["name"]: doc["stringData"] for doc in documents}


# The renderer ------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed here")
def test_the_renderer_prints_what_kubectl_kustomize_prints(overlay: str) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    theirs = {resource_id(r): r for r in yaml.safe_load_all(result.stdout) if r}
    ours = {resource_id(r): r for r in build(K8S / "overlays" / overlay)}
    assert sorted(ours) == sorted(theirs)
    for key, resource in ours.items():
        assert resource == theirs[key], key


# Validation -------------------------------------------------------------------------------


def test_every_built_in_resource_validates_against_the_kubernetes_schemas(
    rendered: list[Resource],
) -> None:
    built_in = [r for r in rendered if (r["apiVersion"], r["kind"]) not in SCHEMAS]
    assert {r["kind"] for r in built_in} >= {"Deployment", "Service", "PodDisruptionBudget"}
    for version in KUBERNETES_VERSIONS:
        for resource in built_in:
            kubernetes_validate.validate(resource, version, strict=True)


def test_the_example_secrets_validate_and_are_in_no_kustomization() -> None:
    text = (K8S / "secrets.example.yaml").read_text(encoding="utf-8")
    assert text.startswith("# EXAMPLE ONLY")
    for document in yaml.safe_load_all(text):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        assert all("REPLACE-ME" in value for value in document["stringData"].values())
    for kustomization in K8S.rglob("kustomization.yaml"):
        listed = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
        entries = [*listed.get("resources", []), *(p["path"] for p in listed.get("patches", []))]
        assert not [entry for entry in entries if "secrets.example" in entry], kustomization


def test_no_secret_is_rendered(rendered: list[Resource]) -> None:
    assert not of_kind(rendered, "Secret")


def test_every_custom_resource_matches_its_structure(rendered: list[Resource]) -> None:
    custom = [r for r in rendered if (r["apiVersion"], r["kind"]) in SCHEMAS]
    assert {r["kind"] for r in custom} == {
        "RabbitmqCluster",
        "MongoDBCommunity",
        "ScaledObject",
        "TriggerAuthentication",
    }
    for resource in custom:
        jsonschema.validate(resource, SCHEMAS[(resource["apiVersion"], resource["kind"])])


def test_the_structure_check_refuses_what_the_operators_refuse(rendered: list[Resource]) -> None:
    scaled = next(iter(of_kind(rendered, "ScaledObject").values()))
    schema = SCHEMAS[(scaled["apiVersion"], scaled["kind"])]
    unquoted = yaml.safe_load(yaml.safe_dump(scaled))
    unquoted["spec"]["triggers"][0]["metadata"]["value"] = 500
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(unquoted, schema)
    misspelt = yaml.safe_load(yaml.safe_dump(scaled))
    misspelt["spec"]["maxReplicas"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(misspelt, schema)


def _strict(schema: Any) -> Any:
    """A CRD's schema as the API server applies it with strict field validation."""
    if isinstance(schema, dict):
        strict = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in strict
            and "additionalProperties" not in strict
            and not strict.get("x-kubernetes-preserve-unknown-fields")
        ):
            strict["additionalProperties"] = False
        return strict
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def _operator_crds(directory: Path) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    for path in sorted(directory.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = _strict(version["schema"]["openAPIV3Schema"])
            # metadata is checked by the API server, not by the CRD's schema.
            schema["properties"]["metadata"] = {"type": "object"}
            yield (f"{group}/{version['name']}", kind), schema


@pytest.mark.skipif(
    not os.environ.get("WHISTLE_CRD_DIR"), reason="set WHISTLE_CRD_DIR to the operators' CRDs"
)
def test_every_custom_resource_validates_against_the_operators_crds(
    rendered: list[Resource],
) -> None:
    crds = dict(_operator_crds(Path(os.environ["WHISTLE_CRD_DIR"])))
    for resource in rendered:
        key = (resource["apiVersion"], resource["kind"])
        if key in SCHEMAS:
            assert key in crds, f"no CRD for {key} in WHISTLE_CRD_DIR"
            jsonschema.validate(resource, crds[key])


# Workloads -------------------------------------------------------------------------------


def test_a_deployment_per_service_from_the_one_image(rendered: list[Resource]) -> None:
    deployments = of_kind(rendered, "Deployment")
    assert set(deployments) == set(PORTS)
    for name, deployment in deployments.items():
        (container,) = containers(deployment)
        assert container["args"] == ["serve", name]
        assert container["image"] == "registry.example.org/whistle/whistle:0.1.0"
        assert container["ports"] == [
            {"name": "http", "containerPort": PORTS[name], "protocol": "TCP"}
        ]
        service = of_kind(rendered, "Service")[name]
        assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(deployment))
        assert service["spec"]["ports"][0]["port"] == PORTS[name]


def test_every_workload_has_probes_and_resources(rendered: list[Resource]) -> None:
    for name, deployment in of_kind(rendered, "Deployment").items():
        (container,) = containers(deployment)
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, name
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}, name
        # A memory limit below the request would never schedule the way it reads.
        assert (
            container["resources"]["limits"]["memory"]
            == container["resources"]["requests"]["memory"]
        )


def test_every_workload_runs_unprivileged_on_a_read_only_root(rendered: list[Resource]) -> None:
    for name, deployment in of_kind(rendered, "Deployment").items():
        spec = pod_spec(deployment)
        assert spec is not None
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        (container,) = containers(deployment)
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context.get("privileged", False) is False
        assert context["capabilities"]["drop"] == ["ALL"]
        # Whatever the app may write is an emptyDir: /tmp, for Python's tempfile.
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert all(set(volume) == {"name", "emptyDir"} for volume in volumes.values())
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert mounts == {"/tmp": "tmp"}


def test_secrets_reach_the_services_only_through_secret_key_refs(
    rendered: list[Resource],
) -> None:
    for name, deployment in of_kind(rendered, "Deployment").items():
        (container,) = containers(deployment)
        assert "envFrom" not in container
        env = {variable["name"]: variable for variable in container["env"]}
        assert env["WHISTLE_ENV"] == {"name": "WHISTLE_ENV", "value": "production"}
        for variable_name, variable in env.items():
            if "valueFrom" in variable:
                assert set(variable["valueFrom"]) == {"secretKeyRef"}, (name, variable_name)
            if any(word in variable_name for word in SENSITIVE):
                assert "value" not in variable, (name, variable_name)
                assert "secretKeyRef" in variable["valueFrom"], (name, variable_name)
        for required in ("WHISTLE_JWT_SECRET", "RABBITMQ_URL", "MONGODB_URL"):
            assert required in env, (name, required)
    notify = {v["name"] for v in containers(of_kind(rendered, "Deployment")["notify"])[0]["env"]}
    assert "WHISTLE_WEBHOOK_SECRET" not in notify  # each receiver has its own secret now
    audit = {v["name"] for v in containers(of_kind(rendered, "Deployment")["audit"])[0]["env"]}
    assert "WHISTLE_AUDIT_SIGNING_KEY" in audit


def _secret_sources(rendered: list[Resource]) -> dict[str, set[str]]:
    """Every Secret a pod may read, with its keys: the example's, and those operators write."""
    sources = {name: set(data) for name, data in example_secrets().items()}
    for cluster in of_kind(rendered, "RabbitmqCluster"):
        sources[f"{cluster}-default-user"] = {"connection_string", "username", "password"}
    for database in of_kind(rendered, "MongoDBCommunity").values():
        for user in database["spec"]["users"]:
            sources[user["connectionStringSecretName"]] = {"connectionString.standard"}
    return sources


def test_every_secret_key_ref_names_a_secret_that_will_exist(rendered: list[Resource]) -> None:
    sources = _secret_sources(rendered)
    for name, deployment in of_kind(rendered, "Deployment").items():
        for variable in containers(deployment)[0]["env"]:
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None and not ref.get("optional", False):
                assert ref["key"] in sources.get(ref["name"], set()), (name, ref)
    for database in of_kind(rendered, "MongoDBCommunity").values():
        for user in database["spec"]["users"]:
            ref = user["passwordSecretRef"]
            assert ref["key"] in sources[ref["name"]]
    for auth in of_kind(rendered, "TriggerAuthentication").values():
        for ref in auth["spec"]["secretTargetRef"]:
            assert ref["key"] in sources[ref["name"]]


def _container_env(deployment: Resource, values: dict[tuple[str, str], str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for variable in containers(deployment)[0]["env"]:
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            env[variable["name"]] = values[(ref["name"], ref["key"])]
    return env


def test_each_container_environment_is_a_valid_production_configuration(
    rendered: list[Resource], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in list(os.environ):
        if variable.startswith("WHISTLE_") or variable in {"RABBITMQ_URL", "MONGODB_URL"}:
            monkeypatch.delenv(variable)
    values = {
        (secret, key): value
        for secret, data in example_secrets().items()
        for key, value in data.items()
    }
    values[(f"{RABBITMQ}-default-user", "connection_string")] = (
        f"amqp://default_user_x:pw@{RABBITMQ}.whistle.svc:5672/"
    )
    deployments = of_kind(rendered, "Deployment")
    for name, entry in SERVICES.items():
        values[(f"{MONGODB}-{name}", "connectionString.standard")] = (
            f"mongodb://{name}:pw@{MONGODB}-0.{MONGODB}-svc.whistle.svc.cluster.local:27017/admin"
            f"?replicaSet={MONGODB}&ssl=false"
        )
        env = _container_env(deployments[name], values)
        bootstrap = importlib.import_module(entry.module)
        with monkeypatch.context() as patch:
            for variable, value in env.items():
                patch.setenv(variable, value)
            settings = bootstrap.load_settings()
        assert settings.env == "production"
        assert settings.host == "0.0.0.0"
        assert settings.port == PORTS[name]
        assert settings.jwt_secret.get_secret_value() != DEV_JWT_SECRET
        assert settings.rabbitmq_url == env["RABBITMQ_URL"]
        assert urlsplit(settings.mongodb_url).path == "/admin"
        # The user may write exactly the database the service uses.
        user = next(
            u
            for u in of_kind(rendered, "MongoDBCommunity")[MONGODB]["spec"]["users"]
            if u["name"] == name
        )
        assert user["roles"] == [{"name": "readWrite", "db": settings.database_name(name)}]


def test_console_reaches_the_four_apis_through_their_services(rendered: list[Resource]) -> None:
    (container,) = containers(of_kind(rendered, "Deployment")["console"])
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert env["WHISTLE_CONSOLE_PORT"] == "8000"
    for name in APIS:
        assert env[f"WHISTLE_{name.upper()}_URL"] == f"http://{name}:{PORTS[name]}"
    assert env["WHISTLE_PUBLIC_URL"].startswith("https://")


def test_every_workload_has_a_disruption_budget_that_allows_a_drain(
    rendered: list[Resource],
) -> None:
    budgets = of_kind(rendered, "PodDisruptionBudget").values()
    for name, deployment in of_kind(rendered, "Deployment").items():
        mine = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(deployment))]
        assert len(mine) == 1, name
        spec = mine[0]["spec"]
        replicas = deployment["spec"]["replicas"]
        if "maxUnavailable" in spec:
            assert 1 <= spec["maxUnavailable"] < replicas, name
        else:
            assert 1 <= spec["minAvailable"] < replicas, name


def test_replicas_per_overlay(overlay: str, rendered: list[Resource]) -> None:
    for name, deployment in of_kind(rendered, "Deployment").items():
        assert deployment["spec"]["replicas"] == REPLICAS[overlay], name
        assert deployment["metadata"]["namespace"] == "whistle"
        assert deployment["metadata"]["labels"]["whistle.dev/overlay"] == overlay


# Network ----------------------------------------------------------------------------------


def _policies_for(rendered: list[Resource], labels: dict[str, str], direction: str) -> list[Any]:
    return [
        p
        for p in of_kind(rendered, "NetworkPolicy").values()
        if direction in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], labels)
    ]


def _destination(peer: dict[str, Any], rendered: list[Resource]) -> str:
    """What an egress peer reaches, named: rabbitmq, mongodb, dns, a service, or outside."""
    if "ipBlock" in peer:
        private = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}
        assert private <= set(peer["ipBlock"]["except"])
        return "outside"
    if "namespaceSelector" in peer:
        assert peer["namespaceSelector"] == {
            "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
        }
        assert peer["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
        return "dns"
    selector = peer["podSelector"]
    if selects(selector, {"app.kubernetes.io/name": RABBITMQ}):
        return "rabbitmq"
    if selects(selector, {"app": f"{MONGODB}-svc"}):
        return "mongodb"
    matched = [
        name
        for name, deployment in of_kind(rendered, "Deployment").items()
        if selects(selector, pod_labels(deployment))
    ]
    assert len(matched) == 1, selector
    return matched[0]


def test_the_namespace_denies_everything_by_default(rendered: list[Resource]) -> None:
    deny = of_kind(rendered, "NetworkPolicy")["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_each_service_reaches_only_the_broker_the_database_and_dns(
    rendered: list[Resource],
) -> None:
    allowed_extra = {"console": set(APIS), "notify": {"outside"}}
    for name, deployment in of_kind(rendered, "Deployment").items():
        labels = pod_labels(deployment)
        reached = {
            _destination(peer, rendered)
            for policy in _policies_for(rendered, labels, "Egress")
            for rule in policy["spec"].get("egress", [])
            for peer in rule.get("to", [{"ipBlock": {"except": []}}])
        }
        assert reached == {"rabbitmq", "mongodb", "dns"} | allowed_extra.get(name, set()), name
        assert _policies_for(rendered, labels, "Ingress"), f"{name}: no ingress policy"


def test_only_the_console_and_the_edge_reach_the_apis(rendered: list[Resource]) -> None:
    console = pod_labels(of_kind(rendered, "Deployment")["console"])
    for name in APIS:
        labels = pod_labels(of_kind(rendered, "Deployment")[name])
        sources = [
            peer
            for policy in _policies_for(rendered, labels, "Ingress")
            for rule in policy["spec"].get("ingress", [])
            for peer in rule["from"]
        ]
        pods = [p["podSelector"] for p in sources if "podSelector" in p]
        assert pods, name
        assert all(selects(selector, console) for selector in pods), name
        namespaces = [
            p["namespaceSelector"]["matchLabels"] for p in sources if "podSelector" not in p
        ]
        assert namespaces == [{"whistle.dev/edge": "true"}, {"whistle.dev/monitoring": "true"}]


def test_the_broker_and_the_database_accept_only_whistle_and_their_peers(
    rendered: list[Resource],
) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    amqp = policies["rabbitmq"]["spec"]["ingress"][0]
    assert amqp["ports"] == [{"protocol": "TCP", "port": 5672}]
    assert {"kubernetes.io/metadata.name": "keda"} in [
        p["namespaceSelector"]["matchLabels"] for p in amqp["from"] if "namespaceSelector" in p
    ]
    mongo = policies["mongodb"]["spec"]["ingress"]
    assert [rule["ports"] for rule in mongo] == [[{"protocol": "TCP", "port": 27017}]]


# Scaling and the broker -------------------------------------------------------------------


def test_a_scaled_object_per_consumer_queue_of_the_topology(rendered: list[Resource]) -> None:
    deployments = of_kind(rendered, "Deployment")
    scaled = list(of_kind(rendered, "ScaledObject").values())
    # KEDA admits one ScaledObject per Deployment: a service with two queues has two triggers.
    targets = [s["spec"]["scaleTargetRef"]["name"] for s in scaled]
    assert len(targets) == len(set(targets))
    by_queue = {
        trigger["metadata"]["queueName"]: (s, trigger)
        for s in scaled
        for trigger in s["spec"]["triggers"]
    }
    assert set(by_queue) == {queue.name for queue in ALL_CONSUMER_QUEUES}
    for queue in ALL_CONSUMER_QUEUES:
        scaled_object, trigger = by_queue[queue.name]
        spec = scaled_object["spec"]
        assert spec["scaleTargetRef"] == {"name": queue.service}
        assert trigger["type"] == "rabbitmq"
        assert trigger["metadata"]["mode"] == "QueueLength"
        assert int(trigger["metadata"]["value"]) > 0
        assert trigger["authenticationRef"]["name"] in of_kind(rendered, "TriggerAuthentication")
        # KEDA never scales below what the overlay runs, nor the ceiling below the floor.
        replicas = deployments[queue.service]["spec"]["replicas"]
        assert spec["minReplicaCount"] == replicas, queue.name
        assert spec["maxReplicaCount"] >= replicas, queue.name


def test_rabbitmq_is_a_three_node_operator_cluster(rendered: list[Resource]) -> None:
    (cluster,) = of_kind(rendered, "RabbitmqCluster").values()
    assert cluster["metadata"]["name"] == RABBITMQ
    assert cluster["spec"]["replicas"] == 3
    affinity = cluster["spec"]["affinity"]["podAntiAffinity"]
    assert affinity["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == (
        "kubernetes.io/hostname"
    )


def test_queue_arguments_come_from_the_code_alone(rendered: list[Resource]) -> None:
    # The code declares every queue quorum, with the delivery limit and the dead-letter route.
    for spec in ALL_CONSUMER_QUEUES:
        queue = spec.queue()
        assert queue.arguments is not None
        assert queue.arguments["x-queue-type"] == "quorum"
        assert queue.arguments["x-delivery-limit"] == spec.delivery_limit > 0
        assert queue.arguments["x-dead-letter-exchange"] == DEAD_LETTER_EXCHANGE.name
    # Nothing on the cluster side restates or overrides them (no policy, no queue resource).
    assert not [
        r
        for r in rendered
        if r["apiVersion"].startswith("rabbitmq.com/")
        and r["kind"] in {"Policy", "OperatorPolicy", "Queue", "Exchange"}
    ]
    (cluster,) = of_kind(rendered, "RabbitmqCluster").values()
    config = cluster["spec"]["rabbitmq"]["additionalConfig"]
    settings_lines = [
        line.strip()
        for line in config.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert not [line for line in settings_lines if "delivery" in line or "dead_letter" in line]


def test_mongodb_is_a_three_member_replica_set_with_a_user_per_service(
    rendered: list[Resource],
) -> None:
    (database,) = of_kind(rendered, "MongoDBCommunity").values()
    assert database["spec"]["type"] == "ReplicaSet"
    assert database["spec"]["members"] == 3
    users = {user["name"]: user for user in database["spec"]["users"]}
    assert set(users) == set(PORTS)
    for name, user in users.items():
        assert user["connectionStringSecretName"] == f"{MONGODB}-{name}"
        assert user["roles"] == [{"name": "readWrite", "db": f"whistle_{name}"}]
