package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// podRunner plays the kubelet's part for the pods bound to the stand-in's nodes.
type podRunner struct {
	client  kubernetes.Interface
	nodes   map[string]bool
	lister  listersv1.PodLister
	queue   workqueue.TypedRateLimitingInterface[string]
	started atomic.Uint64 // pods started so far, for their IPs
}

// runPods watches bound pods and works through them until ctx ends.
func runPods(ctx context.Context, client kubernetes.Interface, nodes []string, workers int) error {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
		}))
	informer := factory.Core().V1().Pods()
	r := &podRunner{
		client: client,
		nodes:  map[string]bool{},
		lister: informer.Lister(),
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 10*time.Second)),
	}
	for _, n := range nodes {
		r.nodes[n] = true
	}
	enqueue := func(obj any) {
		if pod, ok := obj.(*corev1.Pod); ok && r.nodes[pod.Spec.NodeName] {
			if key, err := cache.MetaNamespaceKeyFunc(pod); err == nil {
				r.queue.Add(key)
			}
		}
	}
	if _, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	factory.Start(ctx.Done())
	for kind, synced := range factory.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return fmt.Errorf("listing %v: the cache did not sync before shutdown", kind)
		}
	}
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	done := make(chan struct{})
	for range workers {
		go func() {
			for r.work(ctx) {
			}
			done <- struct{}{}
		}()
	}
	for range workers {
		<-done
	}
	factory.Shutdown()
	return nil
}

// work handles one queued pod; false once the queue shuts down.
func (r *podRunner) work(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	retryAfter, err := r.handle(ctx, key)
	switch {
	case err != nil:
		slog.Warn("pod step failed, retrying", "pod", key, "error", err)
		r.queue.AddRateLimited(key)
	case retryAfter > 0:
		r.queue.Forget(key)
		r.queue.AddAfter(key, retryAfter)
	default:
		r.queue.Forget(key)
	}
	return true
}

func (r *podRunner) handle(ctx context.Context, key string) (time.Duration, error) {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, fmt.Errorf("bad queue key %q: %w", key, err)
	}
	pod, err := r.lister.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading pod from the cache: %w", err)
	}
	now := metav1.Now()
	next, wait, why := nextStep(pod, now.Time)
	switch next {
	case stepNone:
		return 0, nil
	case stepWait:
		return wait, nil
	case stepStart:
		return 0, r.setStatus(ctx, pod, startedStatus(pod, now, podIP(r.started.Add(1)-1)), "started")
	case stepExit:
		prog, _ := programOf(pod) // nextStep read it without error
		return 0, r.setStatus(ctx, pod, exitedStatus(pod, now, prog.exitCode), "containers exited")
	case stepKill:
		return 0, r.setStatus(ctx, pod, killedStatus(pod, now), "stopped for deletion")
	case stepDelete:
		return 0, r.finishDelete(ctx, pod)
	case stepReject:
		return 0, r.setStatus(ctx, pod, rejectedStatus(pod, now, why), "rejected: "+why.Error())
	}
	return 0, fmt.Errorf("unknown step %d for pod %s", next, key)
}

// setStatus writes a new status over the cached pod; a conflict means the cache was stale, and
// the pod comes back through the queue with the newer version.
func (r *podRunner) setStatus(ctx context.Context, pod *corev1.Pod, status corev1.PodStatus, what string) error {
	updated := pod.DeepCopy()
	updated.Status = status
	_, err := r.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("updating status (%s): %w", what, err)
	}
	slog.Info("pod "+what, "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName, "phase", status.Phase)
	return nil
}

// finishDelete removes a stopped pod at once, as a kubelet does once its containers are gone.
// The UID precondition keeps a new pod of the same name safe.
func (r *podRunner) finishDelete(ctx context.Context, pod *corev1.Pod) error {
	err := r.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr(int64(0)),
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting pod: %w", err)
	}
	slog.Info("pod deleted", "pod", pod.Namespace+"/"+pod.Name, "node", pod.Spec.NodeName)
	return nil
}
