package main

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The status the stand-in reports for a pod, shaped like a kubelet's so that controllers,
// kubectl and clients read it the same way. Nothing listens at the pod IP: it is a string.

// nodeIP is every stand-in node's InternalIP and every pod's hostIP.
const nodeIP = "127.0.0.1"

// podIP gives the n-th started pod an address in 127.0.0.0/16, skipping .0 and .255.
func podIP(n uint64) string {
	return fmt.Sprintf("127.0.%d.%d", (n/254)%256, n%254+1)
}

func containerID(pod *corev1.Pod, name string, restarts int32) string {
	return fmt.Sprintf("ebb-standin://%s/%s/%d", pod.UID, name, restarts)
}

// startedStatus is the pod after its containers started: Running and Ready.
func startedStatus(pod *corev1.Pod, now metav1.Time, ip string) corev1.PodStatus {
	status := *pod.Status.DeepCopy()
	status.Phase = corev1.PodRunning
	status.Reason, status.Message = "", ""
	status.HostIP = nodeIP
	status.HostIPs = []corev1.HostIP{{IP: nodeIP}}
	if status.PodIP == "" {
		status.PodIP = ip
		status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	if status.StartTime == nil {
		status.StartTime = &now
	}
	status.InitContainerStatuses = nil
	for _, c := range pod.Spec.InitContainers {
		s := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), ContainerID: containerID(pod, c.Name, 0)}
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			// A sidecar: it keeps running next to the main containers.
			s.State.Running = &corev1.ContainerStateRunning{StartedAt: now}
			s.Ready, s.Started = true, ptr(true)
		} else {
			s.State.Terminated = &corev1.ContainerStateTerminated{Reason: "Completed", StartedAt: now, FinishedAt: now, ContainerID: s.ContainerID}
			s.Ready, s.Started = true, ptr(false)
		}
		status.InitContainerStatuses = append(status.InitContainerStatuses, s)
	}
	status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		status.ContainerStatuses = append(status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: imageID(c.Image), ContainerID: containerID(pod, c.Name, 0),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			Ready: true, Started: ptr(true),
		})
	}
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled} {
		setCondition(&status, t, corev1.ConditionTrue, "", now)
	}
	return status
}

// exitedStatus is the pod after its containers exited with exitCode. If the restart policy
// restarts them, they run again at once (no CrashLoopBackOff) and the pod stays Running.
func exitedStatus(pod *corev1.Pod, now metav1.Time, exitCode int32) corev1.PodStatus {
	status := *pod.Status.DeepCopy()
	restart := restartsAfter(pod.Spec.RestartPolicy, exitCode)
	reason := "Completed"
	if exitCode != 0 {
		reason = "Error"
	}
	for i := range status.ContainerStatuses {
		c := &status.ContainerStatuses[i]
		ended := corev1.ContainerStateTerminated{ExitCode: exitCode, Reason: reason, StartedAt: runningStart(c, now), FinishedAt: now, ContainerID: c.ContainerID}
		if restart {
			c.LastTerminationState = corev1.ContainerState{Terminated: &ended}
			c.RestartCount++
			c.ContainerID = containerID(pod, c.Name, c.RestartCount)
			c.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
			continue
		}
		c.State = corev1.ContainerState{Terminated: &ended}
		c.Ready, c.Started = false, ptr(false)
	}
	if restart {
		return status
	}
	status.Phase = corev1.PodSucceeded
	if exitCode != 0 {
		status.Phase = corev1.PodFailed
	}
	markStopped(&status, now)
	return status
}

// killedStatus is the pod after a deletion stopped its containers, as a kubelet reports it
// before it removes the pod: every container terminated by SIGTERM, phase Failed.
func killedStatus(pod *corev1.Pod, now metav1.Time) corev1.PodStatus {
	status := *pod.Status.DeepCopy()
	for i := range status.ContainerStatuses {
		c := &status.ContainerStatuses[i]
		if c.State.Terminated == nil {
			c.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: exitCodeKilled, Reason: "Error", StartedAt: runningStart(c, now), FinishedAt: now, ContainerID: c.ContainerID,
			}}
		}
		c.Ready, c.Started = false, ptr(false)
	}
	status.Phase = corev1.PodFailed
	markStopped(&status, now)
	return status
}

// rejectedStatus fails a pod whose test annotations the stand-in cannot read, with the reason
// in the pod's status where `kubectl describe` and the test both see it.
func rejectedStatus(pod *corev1.Pod, now metav1.Time, why error) corev1.PodStatus {
	status := *pod.Status.DeepCopy()
	status.Phase = corev1.PodFailed
	status.Reason = "InvalidTestAnnotation"
	status.Message = why.Error()
	markStopped(&status, now)
	return status
}

func markStopped(status *corev1.PodStatus, now metav1.Time) {
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.ContainersReady, corev1.PodReady} {
		setCondition(status, t, corev1.ConditionFalse, "PodCompleted", now)
	}
}

func setCondition(status *corev1.PodStatus, kind corev1.PodConditionType, value corev1.ConditionStatus, reason string, now metav1.Time) {
	for i := range status.Conditions {
		c := &status.Conditions[i]
		if c.Type != kind {
			continue
		}
		if c.Status != value {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason = value, reason
		return
	}
	status.Conditions = append(status.Conditions, corev1.PodCondition{Type: kind, Status: value, Reason: reason, LastTransitionTime: now})
}

func runningStart(c *corev1.ContainerStatus, now metav1.Time) metav1.Time {
	if c.State.Running != nil {
		return c.State.Running.StartedAt
	}
	return now
}

func imageID(image string) string {
	return "ebb-standin://" + image
}

func ptr[T any](v T) *T {
	return &v
}
