# Pinned versions of the local control plane. Sourced by build.sh and read by
# local-cluster/*.ts. Changing a version changes the cache key, so the next
# build is a clean one for that component only.
K8S_VERSION=v1.36.3
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.22.0
METRICS_SERVER_VERSION=v0.8.0
