package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/version"
)

// A kubelet's heartbeat timings (its defaults): the node Lease is renewed every quarter of its
// 40 s duration, and the node status is reported at least every 5 minutes (here every minute,
// which costs little with few nodes and keeps the Ready condition's heartbeat fresh).
const (
	leaseDurationSeconds = 40
	leaseRenewInterval   = 10 * time.Second
	statusInterval       = time.Minute
	nodeNamespaceLease   = corev1.NamespaceNodeLease
	standinLabel         = "ebb.dev/kubelet-standin"
)

// nodeShape is the capacity every stand-in node reports.
type nodeShape struct {
	maxPods int
}

func newNode(name string, shape nodeShape, now metav1.Time) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("32"),
		corev1.ResourceMemory:           resource.MustParse("128Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("500Gi"),
		corev1.ResourcePods:             *resource.NewQuantity(int64(shape.maxPods), resource.DecimalSI),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				corev1.LabelHostname:   name,
				corev1.LabelOSStable:   "linux",
				corev1.LabelArchStable: runtime.GOARCH,
				standinLabel:           "true",
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Conditions:  nodeConditions(now),
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: nodeIP},
				{Type: corev1.NodeHostName, Address: name},
			},
			NodeInfo: corev1.NodeSystemInfo{
				KubeletVersion:          version.Get().GitVersion,
				OperatingSystem:         "linux",
				Architecture:            runtime.GOARCH,
				OSImage:                 "ebb kubelet stand-in",
				KernelVersion:           kernelVersion(),
				ContainerRuntimeVersion: "ebb-standin://1",
			},
		},
	}
}

func nodeConditions(now metav1.Time) []corev1.NodeCondition {
	condition := func(kind corev1.NodeConditionType, status corev1.ConditionStatus, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: kind, Status: status, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return []corev1.NodeCondition{
		condition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory"),
		condition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure"),
		condition(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID"),
		condition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady"),
	}
}

// registerNode creates the node, or takes over one left by an earlier run, and reports it Ready.
func registerNode(ctx context.Context, client kubernetes.Interface, name string, shape nodeShape) (*corev1.Node, error) {
	now := metav1.Now()
	want := newNode(name, shape, now)
	node, err := client.CoreV1().Nodes().Create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		node, err = client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("registering node %s: %w", name, err)
	}
	// Status sent with a create may be dropped or stale; report it through the status endpoint.
	node.Status = want.Status
	node, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("reporting node %s Ready: %w", name, err)
	}
	return node, nil
}

// heartbeat keeps the nodes' Leases and Ready conditions fresh, so the node-lifecycle controller
// sees live kubelets, until ctx ends.
func heartbeat(ctx context.Context, client kubernetes.Interface, nodes []*corev1.Node) {
	leases := map[string]*coordinationv1.Lease{}
	renewAll := func() {
		for _, node := range nodes {
			lease, err := renewLease(ctx, client, node, leases[node.Name])
			if err != nil {
				slog.Warn("lease renewal failed", "node", node.Name, "error", err)
				delete(leases, node.Name)
				continue
			}
			leases[node.Name] = lease
		}
	}
	renewAll()
	leaseTick := time.NewTicker(leaseRenewInterval)
	statusTick := time.NewTicker(statusInterval)
	defer leaseTick.Stop()
	defer statusTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-leaseTick.C:
			renewAll()
		case <-statusTick.C:
			for _, node := range nodes {
				if err := reportReady(ctx, client, node.Name); err != nil {
					slog.Warn("node status report failed", "node", node.Name, "error", err)
				}
			}
		}
	}
}

// renewLease updates the node's Lease, creating it (owned by the Node, as a kubelet does) when
// there is none or the last one we held is gone or stale.
func renewLease(ctx context.Context, client kubernetes.Interface, node *corev1.Node, held *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	leases := client.CoordinationV1().Leases(nodeNamespaceLease)
	now := metav1.NewMicroTime(time.Now())
	if held == nil {
		existing, err := leases.Get(ctx, node.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			created, err := leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{
					Name:      node.Name,
					Namespace: nodeNamespaceLease,
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
					}},
				},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity:       ptr(node.Name),
					LeaseDurationSeconds: ptr(int32(leaseDurationSeconds)),
					RenewTime:            &now,
				},
			}, metav1.CreateOptions{})
			if err != nil {
				return nil, fmt.Errorf("creating lease: %w", err)
			}
			return created, nil
		case err != nil:
			return nil, fmt.Errorf("reading lease: %w", err)
		}
		held = existing
	}
	lease := held.DeepCopy()
	lease.Spec.HolderIdentity = ptr(node.Name)
	lease.Spec.LeaseDurationSeconds = ptr(int32(leaseDurationSeconds))
	lease.Spec.RenewTime = &now
	updated, err := leases.Update(ctx, lease, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("renewing lease: %w", err)
	}
	return updated, nil
}

// reportReady refreshes the heartbeat of the node's conditions with a strategic merge patch
// (conditions merge by type), as a kubelet's status report does.
func reportReady(ctx context.Context, client kubernetes.Interface, name string) error {
	type heartbeat struct {
		Type              corev1.NodeConditionType `json:"type"`
		Status            corev1.ConditionStatus   `json:"status"`
		Reason            string                   `json:"reason"`
		LastHeartbeatTime metav1.Time              `json:"lastHeartbeatTime"`
	}
	var beats []heartbeat
	for _, c := range nodeConditions(metav1.Now()) {
		beats = append(beats, heartbeat{c.Type, c.Status, c.Reason, c.LastHeartbeatTime})
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": beats}})
	if err != nil {
		return fmt.Errorf("encoding node status patch: %w", err)
	}
	if _, err := client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("patching node status: %w", err)
	}
	return nil
}

// kernelVersion is the host's, as a kubelet reports it; empty where /proc does not say.
func kernelVersion() string {
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(release))
}
