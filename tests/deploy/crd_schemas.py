"""Structural schemas of the three custom resources deploy/k8s/ uses, written for these tests.

The operators publish their CRDs only in their source repositories and container images, not
on PyPI or npm (npm's @kubernetes-models/keda ships compiled validators, not schemas), so they
cannot be vendored from a package registry. These schemas are written from the operators'
CRDs (RabbitMQ Cluster Operator 2.x, KEDA 2.x, MongoDB Controllers for Kubernetes 1.x) for
the fields the manifests use, and are strict where Kubernetes would be: an unknown field in
`spec` is an error, as `kubectl apply` with server-side field validation makes it.

`WHISTLE_CRD_DIR=<dir of CRD YAML files>` also checks the manifests against the operators' own
CRDs (tests/deploy/test_k8s_manifests.py).
"""

from typing import Any

QUANTITY = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": r"^[0-9.]+[a-zA-Z]*$"}]}
RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "requests": {"type": "object", "additionalProperties": QUANTITY},
        "limits": {"type": "object", "additionalProperties": QUANTITY},
    },
}
NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
SECRET_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": NAME,
        "namespace": NAME,
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
    }


RABBITMQ_CLUSTER = _resource(
    "rabbitmq.com/v1beta1",
    "RabbitmqCluster",
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "replicas": {"type": "integer", "minimum": 0},
            "image": {"type": "string"},
            "imagePullSecrets": {"type": "array"},
            "resources": RESOURCES,
            "persistence": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"storage": QUANTITY, "storageClassName": {"type": "string"}},
            },
            "rabbitmq": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "additionalConfig": {"type": "string", "maxLength": 100000},
                    "additionalPlugins": {
                        "type": "array",
                        "maxItems": 100,
                        "items": {"type": "string", "pattern": r"^\w+$", "maxLength": 100},
                    },
                    "advancedConfig": {"type": "string"},
                    "envConfig": {"type": "string"},
                },
            },
            "affinity": {"type": "object"},
            "tolerations": {"type": "array"},
            "override": {"type": "object"},
            "service": {"type": "object"},
            "tls": {"type": "object"},
            "terminationGracePeriodSeconds": {"type": "integer", "minimum": 0},
            "skipPostDeploySteps": {"type": "boolean"},
            "delayStartSeconds": {"type": "integer", "minimum": 0},
            "autoEnableAllFeatureFlags": {"type": "boolean"},
            "secretBackend": {"type": "object"},
        },
    },
)

TRIGGER_AUTHENTICATION = _resource(
    "keda.sh/v1alpha1",
    "TriggerAuthentication",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["secretTargetRef"],
        "properties": {
            "secretTargetRef": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["parameter", "name", "key"],
                    "properties": {
                        "parameter": {"type": "string"},
                        "name": SECRET_NAME,
                        "key": {"type": "string"},
                    },
                },
            }
        },
    },
)

SCALED_OBJECT = _resource(
    "keda.sh/v1alpha1",
    "ScaledObject",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["scaleTargetRef", "triggers"],
        "properties": {
            "scaleTargetRef": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": NAME,
                    "kind": {"type": "string"},
                    "apiVersion": {"type": "string"},
                    "envSourceContainerName": {"type": "string"},
                },
            },
            "minReplicaCount": {"type": "integer", "minimum": 0},
            "maxReplicaCount": {"type": "integer", "minimum": 1},
            "idleReplicaCount": {"type": "integer", "minimum": 0},
            "pollingInterval": {"type": "integer", "minimum": 1},
            "cooldownPeriod": {"type": "integer", "minimum": 0},
            "initialCooldownPeriod": {"type": "integer", "minimum": 0},
            "advanced": {"type": "object"},
            "fallback": {"type": "object"},
            "triggers": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["type", "metadata"],
                    "properties": {
                        "type": {"type": "string"},
                        "name": {"type": "string"},
                        "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                        "useCachedMetrics": {"type": "boolean"},
                        # KEDA's trigger metadata is a map of strings: `value: 500` is refused.
                        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                        "authenticationRef": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name"],
                            "properties": {
                                "name": NAME,
                                "kind": {
                                    "enum": [
                                        "TriggerAuthentication",
                                        "ClusterTriggerAuthentication",
                                    ]
                                },
                            },
                        },
                    },
                },
            },
        },
    },
)

_SECRET_KEY_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {"name": SECRET_NAME, "key": {"type": "string"}},
}
MONGODB_COMMUNITY = _resource(
    "mongodbcommunity.mongodb.com/v1",
    "MongoDBCommunity",
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["security", "type", "users"],
        "properties": {
            "type": {"enum": ["ReplicaSet"]},
            "members": {"type": "integer", "minimum": 1},
            "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
            "featureCompatibilityVersion": {"type": "string"},
            "security": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "authentication": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["modes"],
                        "properties": {
                            "modes": {
                                "type": "array",
                                "items": {
                                    "enum": ["SCRAM", "SCRAM-SHA-256", "SCRAM-SHA-1", "X509"]
                                },
                            },
                            "ignoreUnknownUsers": {"type": "boolean"},
                        },
                    },
                    "tls": {"type": "object"},
                    "roles": {"type": "array"},
                },
            },
            "users": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name", "roles"],
                    "properties": {
                        "name": {"type": "string"},
                        "db": {"type": "string"},
                        "passwordSecretRef": _SECRET_KEY_REF,
                        "roles": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["name", "db"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "db": {"type": "string"},
                                },
                            },
                        },
                        "scramCredentialsSecretName": {
                            "type": "string",
                            "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                        },
                        "connectionStringSecretName": SECRET_NAME,
                    },
                },
            },
            "additionalMongodConfig": {"type": "object"},
            "statefulSet": {
                "type": "object",
                "required": ["spec"],
                "additionalProperties": False,
                "properties": {"spec": {"type": "object"}, "metadata": {"type": "object"}},
            },
        },
    },
)

SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): RABBITMQ_CLUSTER,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): TRIGGER_AUTHENTICATION,
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT,
    ("mongodbcommunity.mongodb.com/v1", "MongoDBCommunity"): MONGODB_COMMUNITY,
}
