// Command ebb-kubelet-standin stands in for the kubelets of a test cluster, where no container
// runtime exists. It registers Ready nodes and keeps their Leases fresh, starts the pods the
// scheduler binds to them (Running and Ready; the pod IP is only a string), lets a pod's
// containers exit as its annotations ask (see program.go), and finishes graceful deletes. It does
// what a kubelet does to the API and nothing else: every controller is the real Kubernetes code.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

type options struct {
	kubeconfig string
	nodes      int
	nodePrefix string
	maxPods    int
	workers    int
	qps        float64
	burst      int
}

func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("ebb-kubelet-standin", flag.ContinueOnError)
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the stand-in's user (needs the system:node ClusterRole)")
	fs.IntVar(&o.nodes, "nodes", 2, "number of nodes to register")
	fs.StringVar(&o.nodePrefix, "node-name-prefix", "ebb-node-", "node names are this prefix and a number from 0")
	fs.IntVar(&o.maxPods, "max-pods", 110, "pods each node accepts (its pods capacity)")
	fs.IntVar(&o.workers, "workers", 8, "pods handled at once")
	fs.Float64Var(&o.qps, "kube-api-qps", 100, "client-side rate limit, requests per second")
	fs.IntVar(&o.burst, "kube-api-burst", 200, "client-side burst")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("parsing flags: %w", err)
	}
	switch {
	case o.kubeconfig == "":
		return o, errors.New("--kubeconfig is required")
	case o.nodes < 1:
		return o, errors.New("--nodes must be at least 1")
	case o.maxPods < 1:
		return o, errors.New("--max-pods must be at least 1")
	case o.workers < 1:
		return o, errors.New("--workers must be at least 1")
	}
	return o, nil
}

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	o, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "ebb-kubelet-standin:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "ebb-kubelet-standin:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	config, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("loading kubeconfig %s: %w", o.kubeconfig, err)
	}
	config.QPS, config.Burst = float32(o.qps), o.burst
	config.UserAgent = "ebb-kubelet-standin"
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("building client: %w", err)
	}
	var nodes []*corev1.Node
	var names []string
	for i := range o.nodes {
		node, err := registerNode(ctx, client, fmt.Sprintf("%s%d", o.nodePrefix, i), nodeShape{maxPods: o.maxPods})
		if err != nil {
			return err
		}
		nodes = append(nodes, node)
		names = append(names, node.Name)
	}
	go heartbeat(ctx, client, nodes)
	slog.Info("nodes registered and Ready", "nodes", names)
	if err := runPods(ctx, client, names, o.workers); err != nil {
		return err
	}
	slog.Info("stopped")
	return nil
}
