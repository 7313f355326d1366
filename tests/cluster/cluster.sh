#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, from the binaries build.sh cached:
# etcd + kube-apiserver + kube-controller-manager + kube-scheduler, kwok for 3 fake nodes
# (pods are scheduled for real and marked Running/Ready by kwok), and rev-test-injector serving
# the Istio charts' webhooks.
#
#   cluster.sh up       start (no-op if already healthy; cleans up after a crashed run first)
#   cluster.sh down     stop exactly the processes `up` started, delete the state dir
#   cluster.sh status   processes and health
#   cluster.sh env      print `export ...` lines (KUBECONFIG, PATH, injector URL/CA) to eval
#
# Env: REV_CLUSTER_STATE (state dir, default tests/cluster/.state), REV_CLUSTER_CACHE,
#      REV_INJECTOR_BIN, REV_CLUSTER_NAME (the kubeconfigs' cluster name and context prefix,
#      default rev-test). Everything listens on 127.0.0.1, on free ports picked at `up`, so
#      several instances run side by side, one state dir (and name) each.
#      For the benchmark (tests/bench/live.py): REV_CLUSTER_CONTROLLER_QPS raises the
#      controllers' and the scheduler's client rate limits (20 and 50/s by default: 10,000 pods
#      would take minutes to create); REV_CLUSTER_AUDIT=1 logs every get and list (who, URI) to
#      logs/audit.log, so requests are counted by the server, for any client;
#      REV_CLUSTER_NODES and REV_CLUSTER_NODE_PODS (3 nodes of 110 pods by default) hold more;
#      REV_CLUSTER_PROFILING=1 serves the API server's /debug/pprof (CPU profiles with Go
#      symbols: the Kubernetes build strips its binaries, so perf alone cannot name them).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PKI="$STATE_DIR/pki"
MARKER="$STATE_DIR/.rev-cluster-state"
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok rev-test-injector)
# kwok nodes: 3, each taking 110 pods (kubelet's default), unless the benchmark asks for more
# room (REV_CLUSTER_NODES, REV_CLUSTER_NODE_PODS).
mapfile -t NODES < <(seq -f 'kwok-node-%g' 0 $(( ${REV_CLUSTER_NODES:-3} - 1 )))
NODE_PODS="${REV_CLUSTER_NODE_PODS:-110}"
# Service ClusterIPs come from a loopback range: nothing routes ClusterIPs here (no kube-proxy),
# and anything that dials one anyway (a webhook or APIService given as a Service reference)
# then stays on this machine and gets "connection refused" instead of leaving it.
SERVICE_CIDR=127.16.0.0/16
# Two instances' kubeconfigs merge into one with two contexts (KUBECONFIG=a:b kubectl config
# view --flatten) only if their cluster, user and context names differ.
CLUSTER_NAME="${REV_CLUSTER_NAME:-rev-test}"
# Pod IPs are data only (kwok assigns them; no one dials them); Endpoints reject loopback.
POD_CIDR=10.244.0.1/16

# ---------------------------------------------------------------------------------------------
# processes

pid_of() { cat "$STATE_DIR/pids/$1.pid" 2>/dev/null || true; }

# A pid counts as ours only while it runs with our state dir on its command line: after a crash
# a recorded pid may have been reused by an unrelated process.
is_ours() {
    local pid="$1"
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$STATE_DIR/"
}

start() {
    local name="$1"; shift
    # setsid: the cluster outlives the shell (or make) that started it, and ^C there spares it.
    setsid "$@" </dev/null >"$STATE_DIR/logs/$name.log" 2>&1 &
    echo $! >"$STATE_DIR/pids/$name.pid"
}

alive_or_die() {
    local name="$1" pid
    pid="$(pid_of "$name")"
    is_ours "$pid" || { tail -n 30 "$STATE_DIR/logs/$name.log" >&2 || true; die "$name exited; log: $STATE_DIR/logs/$name.log"; }
}

# wait_for DESCRIPTION TIMEOUT_S COMPONENT COMMAND...: polls COMMAND, failing fast if the
# component that should make it succeed has died.
wait_for() {
    local what="$1" timeout="$2" comp="$3"; shift 3
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        [[ -z "$comp" ]] || alive_or_die "$comp"
        ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
        sleep 0.2
    done
}

stop_all() {
    local pids=() name pid
    for name in "${COMPONENTS[@]}"; do
        pid="$(pid_of "$name")"
        if is_ours "$pid"; then pids+=("$pid"); kill -TERM "$pid" 2>/dev/null || true; fi
    done
    local deadline=$((SECONDS + 5))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then log "pid $pid ignored TERM, killing"; kill -KILL "$pid" 2>/dev/null || true; fi
    done
    # Reap-free wait for KILLed ones to disappear so their ports are free on return.
    for pid in "${pids[@]}"; do
        local n=0
        while kill -0 "$pid" 2>/dev/null && ((n++ < 50)); do sleep 0.1; done
    done
    ((${#pids[@]} == 0)) || log "stopped ${#pids[@]} processes"
}

remove_state() {
    [[ -d "$STATE_DIR" ]] || return 0
    # Only ever delete a directory this script created.
    [[ -f "$MARKER" ]] || die "$STATE_DIR exists but is not a cluster state dir (no $(basename "$MARKER")); not deleting it"
    rm -rf "$STATE_DIR"
}

# ---------------------------------------------------------------------------------------------
# ports: random in 20000-31999, below Linux's ephemeral range so outgoing connections cannot
# take one between the pick and the bind.

PICKED=" "
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 12000))
        [[ "$PICKED" == *" $p "* ]] && continue
        if ! ss -Hltn "sport = :$p" | grep -q .; then PICKED+="$p "; echo "$p"; return 0; fi
    done
    die "no free port found"
}

# ---------------------------------------------------------------------------------------------
# certificates (EC P-256: instant to generate, accepted by Go and rustls)

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign NAME SUBJECT EXTENSIONS: NAME.key + NAME.crt signed by the test CA.
sign() {
    local name="$1" subj="$2" ext="$3"
    new_key "$PKI/$name.key"
    openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
    printf '%s\n' "$ext" >"$PKI/$name.ext"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 365 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

make_pki() {
    mkdir -p "$PKI"
    new_key "$PKI/ca.key"
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=rev-test-cluster-ca" -days 365 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$PKI/ca.crt" 2>/dev/null
    local server="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
    local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
    sign apiserver "/CN=kube-apiserver" "$server
subjectAltName=IP:127.0.0.1,IP:${SERVICE_CIDR%.0/*}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    sign admin "/O=system:masters/CN=rev-test-admin" "$client"
    sign limited "/CN=limited-user" "$client"
    # The injector is reached by URL https://127.0.0.1:PORT/..., so the apiserver checks the IP SAN.
    sign injector "/CN=rev-test-injector" "$server
subjectAltName=IP:127.0.0.1,DNS:localhost"
    new_key "$PKI/sa.key"
    openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}

kubeconfig() {
    local user="$1" out="$2"
    # The default instance keeps its historical user names (admin, limited).
    local user_entry="$user"
    [[ "$CLUSTER_NAME" == rev-test ]] || user_entry="$CLUSTER_NAME-$user"
    cat >"$out" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $CLUSTER_NAME
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $user_entry
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$user.crt")
    client-key-data: $(base64 -w0 <"$PKI/$user.key")
contexts:
- name: $CLUSTER_NAME-$user
  context:
    cluster: $CLUSTER_NAME
    user: $user_entry
current-context: $CLUSTER_NAME-$user
EOF
}

# ---------------------------------------------------------------------------------------------

load_ports() { [[ -f "$STATE_DIR/ports.env" ]] && . "$STATE_DIR/ports.env"; }

healthy() {
    load_ports || return 1
    local c
    for c in "${COMPONENTS[@]}"; do is_ours "$(pid_of "$c")" || return 1; done
    "$BIN/kubectl" --kubeconfig "$STATE_DIR/admin.kubeconfig" get --raw /readyz >/dev/null 2>&1
}

write_env() {
    cat >"$STATE_DIR/env" <<EOF
export KUBECONFIG='$STATE_DIR/admin.kubeconfig'
export REV_CLUSTER_STATE='$STATE_DIR'
export REV_CLUSTER_BIN='$BIN'
export REV_LIMITED_KUBECONFIG='$STATE_DIR/limited.kubeconfig'
export REV_INJECTOR_URL='https://127.0.0.1:$INJECTOR_PORT'
export REV_INJECTOR_REVISIONS='$STATE_DIR/injector-revisions'
export PATH='$BIN':"\$PATH"
EOF
}

cmd_up() {
    local t0; t0="$(now)"
    for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl; do
        [[ -x "$BIN/$b" ]] || die "$BIN/$b missing: run tests/cluster/build.sh (or make cluster-build)"
    done
    [[ -x "$INJECTOR_BIN" ]] || die "$INJECTOR_BIN missing: run tests/cluster/build.sh"
    if healthy; then
        log "cluster already up"
        echo "$STATE_DIR/admin.kubeconfig"
        return 0
    fi
    if [[ -d "$STATE_DIR" ]]; then
        log "cleaning up a previous run in $STATE_DIR"
        stop_all
        remove_state
    fi
    mkdir -p "$STATE_DIR/pids" "$STATE_DIR/logs"
    touch "$MARKER"

    ETCD_PORT="$(free_port)"; ETCD_PEER_PORT="$(free_port)"; API_PORT="$(free_port)"
    KCM_PORT="$(free_port)"; SCHED_PORT="$(free_port)"; INJECTOR_PORT="$(free_port)"
    cat >"$STATE_DIR/ports.env" <<EOF
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
API_PORT=$API_PORT
KCM_PORT=$KCM_PORT
SCHED_PORT=$SCHED_PORT
INJECTOR_PORT=$INJECTOR_PORT
EOF
    make_pki
    kubeconfig admin "$STATE_DIR/admin.kubeconfig"
    kubeconfig limited "$STATE_DIR/limited.kubeconfig"
    write_env
    log "pki and kubeconfigs in $(since "$t0")"

    start etcd "$BIN/etcd" --name rev-test --data-dir "$STATE_DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "rev-test=http://127.0.0.1:$ETCD_PEER_PORT" \
        --unsafe-no-fsync --quota-backend-bytes 2147483648 --log-level warn

    # The injector: every revision of versions.env is served from the start; a test can drop a
    # line from this file to play "that istiod is gone" (pods of that revision are then denied).
    printf '%s=%s/proxyv2:%s\n' "$OLD_REV" "$ISTIO_HUB" "$OLD_TAG" "$NEW_REV" "$ISTIO_HUB" "$NEW_TAG" \
        >"$STATE_DIR/injector-revisions"
    # Like istiod, it reads each revision's istio-sidecar-injector-<rev> ConfigMap (policy,
    # never/alwaysInjectSelector) from the API server, once that is up.
    start rev-test-injector "$INJECTOR_BIN" --listen "127.0.0.1:$INJECTOR_PORT" \
        --tls-cert "$PKI/injector.crt" --tls-key "$PKI/injector.key" \
        --revisions-file "$STATE_DIR/injector-revisions" \
        --kubeconfig "$STATE_DIR/admin.kubeconfig"

    wait_for "etcd" 30 etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"
    log "etcd ready in $(since "$t0")"

    # SSL_CERT_FILE: a webhook without caBundle is checked against the system roots, to which
    # this adds the test CA (Go reads SSL_CERT_FILE plus the usual cert dirs). The Istio charts
    # set caBundle from injectionCABundle, but real istiod patches it in at run time and no
    # istiod runs here: webhooks rendered any other way (e.g. the revision-tag template, whose
    # own `core` define has no caBundle) must still reach the injector.
    local audit_flags=()
    if [[ "${REV_CLUSTER_AUDIT:-}" == 1 ]]; then
        # Reads only, once each when answered: the benchmark counts requests per client.
        cat >"$STATE_DIR/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [get, list]
- level: None
EOF
        audit_flags=(--audit-policy-file "$STATE_DIR/audit-policy.yaml" --audit-log-format json
            --audit-log-path "$STATE_DIR/logs/audit.log" --audit-log-maxsize 0)
    fi
    SSL_CERT_FILE="$PKI/ca.crt" start kube-apiserver "$BIN/kube-apiserver" \
        --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
        --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
        --cert-dir "$STATE_DIR/apiserver" \
        --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
        --client-ca-file "$PKI/ca.crt" \
        --requestheader-client-ca-file "$PKI/ca.crt" --requestheader-allowed-names front-proxy-client \
        --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
        --requestheader-extra-headers-prefix X-Remote-Extra- \
        --authorization-mode Node,RBAC \
        --enable-admission-plugins NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultTolerationSeconds,Priority,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
        --allow-privileged=true \
        --service-cluster-ip-range "$SERVICE_CIDR" \
        --endpoint-reconciler-type none \
        --service-account-issuer https://kubernetes.default.svc.cluster.local \
        --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
        --profiling="$([[ "${REV_CLUSTER_PROFILING:-}" == 1 ]] && echo true || echo false)" \
        "${audit_flags[@]}" --v=0

    wait_for "kube-apiserver /readyz" 90 kube-apiserver \
        curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://127.0.0.1:$API_PORT/readyz"
    log "kube-apiserver ready in $(since "$t0")"

    local kc="$STATE_DIR/admin.kubeconfig"
    # --node-monitor-grace-period 2m: on 2 busy cores kwok may renew a node Lease late, and one
    # NotReady blip leaves pods Ready=False for good (kwok does not set them back).
    local qps_flags=()
    if [[ -n "${REV_CLUSTER_CONTROLLER_QPS:-}" ]]; then
        qps_flags=(--kube-api-qps "$REV_CLUSTER_CONTROLLER_QPS" --kube-api-burst "$((2 * REV_CLUSTER_CONTROLLER_QPS))")
    fi
    start kube-controller-manager "$BIN/kube-controller-manager" \
        --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
        --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
        --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
        --use-service-account-credentials --allocate-node-cidrs=false \
        --node-monitor-grace-period 2m "${qps_flags[@]}" \
        --service-cluster-ip-range "$SERVICE_CIDR" --v=0
    start kube-scheduler "$BIN/kube-scheduler" \
        --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
        --bind-address 127.0.0.1 --secure-port "$SCHED_PORT" --leader-elect=false "${qps_flags[@]}" --v=0

    # kwok: built-in node stages; our own pod stages; a stage acting as a cloud load-balancer
    # controller (without it `helm --wait` never returns for the gateway charts: Helm 3 waits for
    # type LoadBalancer Services to get an ingress).
    # Pods start as real ones do, 1-4 s after binding (REV_POD_START_MS/REV_POD_START_JITTER_MS,
    # or per pod the pod-ready.stage.kwok.x-k8s.io/delay and .../jitter-delay annotations, e.g.
    # "0ms" for the benchmark's thousands), so rollouts take seconds and the watch, progress and
    # Ctrl-C paths run mid-rollout. kwok's built-in "fast" pod stages (Ready at once) are
    # replaced only as a set: a configured Pod stage drops them all, so deletion and Job
    # completion are stated here too.
    cat >"$STATE_DIR/kwok.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  cidr: $POD_CIDR
  nodeIP: 127.0.0.1
  # Heartbeats through Leases renewed every 10s. Without this kwok 0.7 run with --config falls
  # back to status heartbeats every 20-45s, and the node lifecycle controller (grace 50s) flaps
  # the nodes NotReady and marks every pod Ready=False, which kwok never sets back.
  nodeLeaseDurationSeconds: 40
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: DoesNotExist
    - key: .status.podIP
      operator: DoesNotExist
  delay:
    durationMilliseconds: ${REV_POD_START_MS:-1000}
    durationFrom:
      expressionFrom: '.metadata.annotations["pod-ready.stage.kwok.x-k8s.io/delay"]'
    jitterDurationMilliseconds: ${REV_POD_START_JITTER_MS:-4000}
    jitterDurationFrom:
      expressionFrom: '.metadata.annotations["pod-ready.stage.kwok.x-k8s.io/jitter-delay"]'
  next:
    event:
      type: Normal
      reason: Started
      message: Started containers
    statusTemplate: |
      {{ \$now := Now }}
      conditions:
      - {type: Initialized, status: "True", lastTransitionTime: {{ \$now | Quote }}}
      - {type: ContainersReady, status: "True", lastTransitionTime: {{ \$now | Quote }}}
      - {type: Ready, status: "True", lastTransitionTime: {{ \$now | Quote }}}
      {{ range .spec.readinessGates }}
      - {type: {{ .conditionType | Quote }}, status: "True", lastTransitionTime: {{ \$now | Quote }}}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        started: true
        restartCount: 0
        state: {running: {startedAt: {{ \$now | Quote }}}}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        restartCount: 0
        {{ if eq .restartPolicy "Always" }}
        ready: true
        started: true
        state: {running: {startedAt: {{ \$now | Quote }}}}
        {{ else }}
        ready: false
        state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ \$now | Quote }}, finishedAt: {{ \$now | Quote }}}}
        {{ end }}
      {{ end }}
      hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
      podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) | Quote }}
      phase: Running
      startTime: {{ \$now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: DoesNotExist
    - key: .status.phase
      operator: In
      values: ["Running"]
    - key: .metadata.ownerReferences.[].kind
      operator: In
      values: ["Job"]
  next:
    statusTemplate: |
      {{ \$now := Now }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: false
        started: false
        restartCount: 0
        state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ \$now | Quote }}, finishedAt: {{ \$now | Quote }}}}
      {{ end }}
      phase: Succeeded
---
# A deleted pod goes at once: no kubelet here honours a grace period or runs preStop hooks.
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: Exists
  next:
    finalizers:
      empty: true
    delete: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: service-load-balancer
spec:
  resourceRef:
    apiGroup: v1
    kind: Service
  selector:
    matchExpressions:
    - key: .spec.type
      operator: In
      values: ["LoadBalancer"]
    - key: .status.loadBalancer.ingress
      operator: DoesNotExist
  next:
    statusTemplate: |
      loadBalancer:
        ingress:
        - ip: 127.0.0.1
          ipMode: VIP
EOF
    start kwok "$BIN/kwok" --kubeconfig "$kc" --config "$STATE_DIR/kwok.yaml" --manage-all-nodes=true \
        --node-lease-duration-seconds 40

    wait_for "rev-test-injector /healthz" 20 rev-test-injector \
        curl -sf --cacert "$PKI/ca.crt" "https://127.0.0.1:$INJECTOR_PORT/healthz"

    local k=("$BIN/kubectl" --kubeconfig "$kc")
    {
        local n
        for n in "${NODES[@]}"; do cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $n
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: $n
    kubernetes.io/os: linux
    node-role.kubernetes.io/worker: ""
    type: kwok
status:
  allocatable: {cpu: "32", memory: 128Gi, pods: "$NODE_PODS"}
  capacity: {cpu: "32", memory: 128Gi, pods: "$NODE_PODS"}
---
EOF
        done
        limited_rbac
    } | "${k[@]}" apply -f - >/dev/null

    # One list per check: `kubectl wait --all` watches node after node, and with the
    # benchmark's dozens of nodes its --timeout=1s never covers them all.
    all_nodes_ready() {
        [[ "$("${k[@]}" get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
            grep -c '^True$')" -eq ${#NODES[@]} ]]
    }
    wait_for "nodes Ready" 60 kwok all_nodes_ready
    wait_for "default ServiceAccount" 60 kube-controller-manager "${k[@]}" get serviceaccount default -n default
    alive_or_die kube-scheduler
    log "cluster up in $(since "$t0"): ${#NODES[@]} nodes Ready"
    echo "$STATE_DIR/admin.kubeconfig"
}

# The limited user (CN=limited-user, limited.kubeconfig), for RBAC tests of the plugins:
# - may get/list/watch every core resource except Secrets (so no Helm release records), and
#   every resource of the API groups listed below (workloads, webhook configurations, CRDs,
#   Istio config, ...);
# - may not create/update/patch/delete anything: in particular not patch namespaces (relabel)
#   nor deployments (rollout restart);
# - keeps what every authenticated user has (discovery, SelfSubjectAccessReview,
#   SelfSubjectRulesReview), so plugins can ask what they may do.
limited_rbac() {
    cat <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: rev-test-limited
rules:
- apiGroups: [""]
  resources: [namespaces, pods, pods/log, pods/status, services, endpoints, configmaps,
    serviceaccounts, nodes, events, replicationcontrollers, persistentvolumeclaims,
    persistentvolumes, limitranges, resourcequotas]
  verbs: [get, list, watch]
- apiGroups: [apps, batch, autoscaling, policy, admissionregistration.k8s.io,
    apiextensions.k8s.io, networking.k8s.io, discovery.k8s.io, coordination.k8s.io,
    storage.k8s.io, scheduling.k8s.io, events.k8s.io, gateway.networking.k8s.io,
    networking.istio.io, security.istio.io, telemetry.istio.io, extensions.istio.io]
  resources: ["*"]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: rev-test-limited
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: rev-test-limited
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: limited-user
EOF
}

cmd_down() {
    if [[ ! -d "$STATE_DIR" ]]; then log "no cluster state in $STATE_DIR"; return 0; fi
    stop_all
    remove_state
    log "cluster down"
}

cmd_status() {
    local c pid rc=0
    for c in "${COMPONENTS[@]}"; do
        pid="$(pid_of "$c")"
        if is_ours "$pid"; then printf '%-24s running (pid %s)\n' "$c" "$pid"; else printf '%-24s not running\n' "$c"; rc=1; fi
    done
    if healthy; then
        echo "kubeconfig: $STATE_DIR/admin.kubeconfig"
        "$BIN/kubectl" --kubeconfig "$STATE_DIR/admin.kubeconfig" get nodes
    else
        rc=1
    fi
    return $rc
}

cmd_env() {
    [[ -f "$STATE_DIR/env" ]] || die "no cluster state in $STATE_DIR: run cluster.sh up"
    cat "$STATE_DIR/env"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac
