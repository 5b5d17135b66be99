package main

import (
	"fmt"
	"math"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The annotations a test puts on a pod (usually through a Job's pod template) to say what the
// pod's containers do: exit with this outcome after this many seconds. Without them the
// containers run until the pod is deleted, like a long-running server.
const (
	outcomeAnnotation    = "ebb.dev/test-pod-outcome"
	runSecondsAnnotation = "ebb.dev/test-pod-run-seconds"

	// maxRunSeconds bounds the run time so that a typo cannot park a pod for years.
	maxRunSeconds = 24 * 60 * 60

	// exitCodeFailed is what a "Failed" container exits with; exitCodeKilled is a container
	// stopped by SIGTERM when its pod is deleted (128 + 15).
	exitCodeFailed = 1
	exitCodeKilled = 143
)

// program is what the containers of one pod do once they start.
type program struct {
	// exits is false for a container that runs until its pod is deleted.
	exits    bool
	exitCode int32
	runFor   time.Duration
}

// programOf reads the pod's annotations. An annotation the stand-in cannot read is an error,
// which the caller reports on the pod itself so that the test sees it.
func programOf(pod *corev1.Pod) (program, error) {
	outcome, hasOutcome := pod.Annotations[outcomeAnnotation]
	seconds, hasSeconds := pod.Annotations[runSecondsAnnotation]
	if !hasOutcome && !hasSeconds {
		return program{}, nil
	}
	prog := program{exits: true}
	switch {
	case !hasOutcome, outcome == string(corev1.PodSucceeded):
		prog.exitCode = 0
	case outcome == string(corev1.PodFailed):
		prog.exitCode = exitCodeFailed
	default:
		return program{}, fmt.Errorf("annotation %s must be %q or %q, got %q",
			outcomeAnnotation, corev1.PodSucceeded, corev1.PodFailed, outcome)
	}
	if hasSeconds {
		value, err := strconv.ParseFloat(seconds, 64)
		if err != nil || math.IsNaN(value) || value < 0 || value > maxRunSeconds {
			return program{}, fmt.Errorf("annotation %s must be a number of seconds from 0 to %d, got %q",
				runSecondsAnnotation, maxRunSeconds, seconds)
		}
		prog.runFor = time.Duration(value * float64(time.Second))
	}
	return prog, nil
}

// step is the next thing the stand-in does to a pod, as a kubelet would.
type step int

const (
	stepNone   step = iota // nothing to do, now or later
	stepStart              // start the containers: Pending -> Running, Ready
	stepWait               // containers are running; look again after the returned delay
	stepExit               // containers exit; the restart policy decides what follows
	stepKill               // the pod is being deleted: stop the containers, terminal phase
	stepDelete             // stopped and being deleted: finish the delete (grace period 0)
	stepReject             // the test's annotations are unreadable: fail the pod, say why
)

// nextStep decides what to do with a pod bound to one of our nodes at time now.
func nextStep(pod *corev1.Pod, now time.Time) (step, time.Duration, error) {
	terminal := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if pod.DeletionTimestamp != nil {
		switch {
		case !terminal:
			return stepKill, 0, nil
		case pod.DeletionGracePeriodSeconds == nil || *pod.DeletionGracePeriodSeconds != 0:
			return stepDelete, 0, nil
		default:
			// Deleted with grace 0 already; only finalizers keep it, and they are not ours.
			return stepNone, 0, nil
		}
	}
	if terminal {
		return stepNone, 0, nil
	}
	prog, err := programOf(pod)
	if err != nil {
		return stepReject, 0, err
	}
	if pod.Status.Phase != corev1.PodRunning {
		return stepStart, 0, nil
	}
	if !prog.exits {
		return stepNone, 0, nil
	}
	due := runningSince(pod).Add(prog.runFor)
	if wait := due.Sub(now); wait > 0 {
		return stepWait, wait, nil
	}
	return stepExit, 0, nil
}

// runningSince is when the pod's containers last started: every container starts and restarts
// together here, so the first one's start time speaks for all of them.
func runningSince(pod *corev1.Pod) time.Time {
	for _, status := range pod.Status.ContainerStatuses {
		if status.State.Running != nil {
			return status.State.Running.StartedAt.Time
		}
	}
	if pod.Status.StartTime != nil {
		return pod.Status.StartTime.Time
	}
	return pod.CreationTimestamp.Time
}

// restartsAfter says whether a kubelet restarts a container that exited with this code.
func restartsAfter(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return true
	}
}
