package main

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func podWith(policy corev1.RestartPolicy, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", Annotations: annotations},
		Spec: corev1.PodSpec{
			NodeName:      "ebb-node-0",
			RestartPolicy: policy,
			Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
}

func TestProgramReadsOutcomeAndRunTime(t *testing.T) {
	cases := []struct {
		annotations map[string]string
		want        program
	}{
		{nil, program{}},
		{map[string]string{outcomeAnnotation: "Succeeded"}, program{exits: true}},
		{map[string]string{outcomeAnnotation: "Failed", runSecondsAnnotation: "2"}, program{exits: true, exitCode: exitCodeFailed, runFor: 2 * time.Second}},
		{map[string]string{runSecondsAnnotation: "0.5"}, program{exits: true, runFor: 500 * time.Millisecond}},
	}
	for _, c := range cases {
		got, err := programOf(podWith(corev1.RestartPolicyNever, c.annotations))
		if err != nil || got != c.want {
			t.Errorf("programOf(%v) = %+v, %v; want %+v", c.annotations, got, err, c.want)
		}
	}
}

func TestProgramRefusesUnreadableAnnotationsByName(t *testing.T) {
	for annotations, names := range map[[2]string]string{
		{"Complete", ""}: outcomeAnnotation,
		{"", "two"}:      runSecondsAnnotation,
		{"", "-1"}:       runSecondsAnnotation,
		{"", "NaN"}:      runSecondsAnnotation,
		{"", "1e9"}:      runSecondsAnnotation,
	} {
		a := map[string]string{}
		if annotations[0] != "" {
			a[outcomeAnnotation] = annotations[0]
		}
		if annotations[1] != "" {
			a[runSecondsAnnotation] = annotations[1]
		}
		pod := podWith(corev1.RestartPolicyNever, a)
		next, _, err := nextStep(pod, time.Now())
		if next != stepReject || err == nil || !strings.Contains(err.Error(), names) {
			t.Errorf("%v: step %v, error %v; want a rejection naming %s", a, next, err, names)
		}
	}
}

func TestJobPodRunsThenSucceedsAfterItsRunTime(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pod := podWith(corev1.RestartPolicyNever, map[string]string{outcomeAnnotation: "Succeeded", runSecondsAnnotation: "2"})
	if next, _, _ := nextStep(pod, start); next != stepStart {
		t.Fatalf("pending pod: step %v, want start", next)
	}
	pod.Status = startedStatus(pod, metav1.NewTime(start), podIP(0))
	if pod.Status.Phase != corev1.PodRunning || pod.Status.PodIP != "127.0.0.1" || !ready(pod) {
		t.Fatalf("started pod: phase %s, IP %s, ready %v", pod.Status.Phase, pod.Status.PodIP, ready(pod))
	}
	if next, wait, _ := nextStep(pod, start.Add(500*time.Millisecond)); next != stepWait || wait != 1500*time.Millisecond {
		t.Fatalf("running pod before its time: step %v after %v, want wait 1.5s", next, wait)
	}
	if next, _, _ := nextStep(pod, start.Add(2*time.Second)); next != stepExit {
		t.Fatalf("running pod at its time: step %v, want exit", next)
	}
	pod.Status = exitedStatus(pod, metav1.NewTime(start.Add(2*time.Second)), 0)
	if pod.Status.Phase != corev1.PodSucceeded || ready(pod) || pod.Status.ContainerStatuses[0].State.Terminated.ExitCode != 0 {
		t.Fatalf("exited pod: %+v", pod.Status)
	}
	if next, _, _ := nextStep(pod, start.Add(time.Hour)); next != stepNone {
		t.Fatalf("succeeded pod: step %v, want none", next)
	}
}

func TestFailedContainerRestartsUnderOnFailureAndFailsThePodUnderNever(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	annotations := map[string]string{outcomeAnnotation: "Failed"}

	onFailure := podWith(corev1.RestartPolicyOnFailure, annotations)
	onFailure.Status = startedStatus(onFailure, now, podIP(0))
	onFailure.Status = exitedStatus(onFailure, now, exitCodeFailed)
	if got := onFailure.Status.ContainerStatuses[0]; onFailure.Status.Phase != corev1.PodRunning || got.RestartCount != 1 || got.LastTerminationState.Terminated.ExitCode != exitCodeFailed {
		t.Fatalf("OnFailure pod after a failure: phase %s, container %+v", onFailure.Status.Phase, got)
	}

	never := podWith(corev1.RestartPolicyNever, annotations)
	never.Status = startedStatus(never, now, podIP(0))
	never.Status = exitedStatus(never, now, exitCodeFailed)
	if never.Status.Phase != corev1.PodFailed || never.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Fatalf("Never pod after a failure: %+v", never.Status)
	}
}

func TestDeletionStopsThePodThenDeletesItOnce(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	pod := podWith(corev1.RestartPolicyAlways, nil)
	pod.Status = startedStatus(pod, now, podIP(0))
	pod.DeletionTimestamp, pod.DeletionGracePeriodSeconds = &now, ptr(int64(30))
	if next, _, _ := nextStep(pod, now.Time); next != stepKill {
		t.Fatalf("running pod being deleted: step %v, want kill", next)
	}
	pod.Status = killedStatus(pod, now)
	if pod.Status.Phase != corev1.PodFailed || pod.Status.ContainerStatuses[0].State.Terminated.ExitCode != exitCodeKilled {
		t.Fatalf("killed pod: %+v", pod.Status)
	}
	if next, _, _ := nextStep(pod, now.Time); next != stepDelete {
		t.Fatalf("stopped pod being deleted: step %v, want delete", next)
	}
	pod.DeletionGracePeriodSeconds = ptr(int64(0))
	if next, _, _ := nextStep(pod, now.Time); next != stepNone {
		t.Fatalf("pod deleted with grace 0, held by a finalizer: step %v, want none", next)
	}
}

func TestPodIPsStayInLoopbackAndSkipNetworkAndBroadcast(t *testing.T) {
	for n, want := range map[uint64]string{0: "127.0.0.1", 253: "127.0.0.254", 254: "127.0.1.1"} {
		if got := podIP(n); got != want {
			t.Errorf("podIP(%d) = %s, want %s", n, got, want)
		}
	}
}

func ready(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
