//! The supervisor's line to one scale loop, and its push tasks' doorbell. A loop only ever
//! needs the newest version of its object, so a one-slot mailbox replaces a queue: it costs a
//! few dozen bytes per object where an unbounded channel allocates a block of 32 slots up
//! front. Push edges ring the same bell, so an idle loop waits on one future, not two.
//!
//! Push edges are paced: after the loop takes some, the next wait until the push window the
//! loop holds ([`Mailbox::hold_push_until`]) has ended, so a scaler whose activity toggles
//! without rest costs one push-started poll per window, not one per message. Edges that come
//! inside the window are not lost: a timer rings the bell when it ends.

use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::scale_loop::Control;

/// One slot and a wake-up. A newer update replaces an unread one; a stop or shutdown is
/// never replaced, so nothing can revive a loop that was told to end.
#[derive(Default)]
pub(crate) struct Mailbox {
    slot: Mutex<Slot>,
    ready: Notify,
}

#[derive(Default)]
struct Slot {
    message: Option<Control>,
    /// A push task saw an activity edge the loop has not handled yet.
    push_edges: bool,
    /// The loop has ended: nobody will read the slot again.
    closed: bool,
    /// A timer will ring the bell when the push window ends (one per window).
    push_timer: bool,
    /// Pushed edges wait until then: the loop took some less than a push window ago.
    push_window_end: Option<Instant>,
}

/// When pushed edges seen at `now` may go to the loop: `None` at once, else the end of the
/// push window still open.
fn push_turn(window_end: Option<Instant>, now: Instant) -> Option<Instant> {
    window_end.filter(|end| *end > now)
}

impl Mailbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Leaves `message` for the loop; gives it back when the loop has already ended.
    pub(crate) fn send(&self, message: Control) -> Result<(), Control> {
        let mut slot = self.lock();
        if slot.closed {
            return Err(message);
        }
        let ending = matches!(slot.message, Some(Control::Stop | Control::Shutdown));
        if !ending {
            slot.message = Some(message);
        }
        drop(slot);
        // A stored permit covers a loop that is not waiting right now.
        self.ready.notify_one();
        Ok(())
    }

    /// Tells the loop that a push task saw an activity edge (the edge itself waits in the
    /// trigger's activity). Several edges before the loop looks are one wake-up.
    pub(crate) fn wake_for_push(&self) {
        let mut slot = self.lock();
        if slot.closed {
            return;
        }
        slot.push_edges = true;
        drop(slot);
        self.ready.notify_one();
    }

    /// Holds pushed edges back until `end`: the loop has just taken some. Edges that come
    /// before then wait for it, whatever else the loop receives meanwhile.
    pub(crate) fn hold_push_until(&self, end: Instant) {
        self.lock().push_window_end = Some(end);
    }

    /// The next message; [`Control::PushEdges`] when only push edges wait and the push window
    /// has ended. Messages from the supervisor come first. Cancel-safe: a message is taken
    /// only when this returns it.
    pub(crate) async fn recv(self: &Arc<Self>) -> Control {
        loop {
            {
                let mut slot = self.lock();
                if let Some(message) = slot.message.take() {
                    return message;
                }
                if slot.push_edges {
                    match push_turn(slot.push_window_end, Instant::now()) {
                        None => {
                            slot.push_edges = false;
                            return Control::PushEdges;
                        }
                        Some(end) if !slot.push_timer => {
                            slot.push_timer = true;
                            self.ring_at(end);
                        }
                        Some(_) => {}
                    }
                }
            }
            self.ready.notified().await;
        }
    }

    /// Rings the bell at `end` from a task of its own: the waiting loop holds no timer (its
    /// future stays small), and only a loop whose scaler pushes faster than the window pays
    /// for one.
    fn ring_at(self: &Arc<Self>, end: Instant) {
        let mailbox = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep_until(end).await;
            if let Some(mailbox) = mailbox.upgrade() {
                mailbox.lock().push_timer = false;
                mailbox.ready.notify_one();
            }
        });
    }

    /// The loop has ended; later sends fail.
    pub(crate) fn close(&self) {
        let mut slot = self.lock();
        slot.closed = true;
        slot.message = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn is_stop(message: &Control) -> bool {
        matches!(message, Control::Stop)
    }

    #[tokio::test]
    async fn a_stop_is_never_replaced_by_a_later_message() {
        let mailbox = Arc::new(Mailbox::default());
        assert!(mailbox.send(Control::Stop).is_ok());
        assert!(mailbox.send(Control::Shutdown).is_ok());
        assert!(is_stop(&mailbox.recv().await));
    }

    #[tokio::test]
    async fn a_message_sent_before_waiting_is_not_lost() {
        let mailbox = Arc::new(Mailbox::default());
        assert!(mailbox.send(Control::Shutdown).is_ok());
        let received = tokio::time::timeout(Duration::from_secs(5), mailbox.recv())
            .await
            .expect("the message waits in the slot");
        assert!(matches!(received, Control::Shutdown));
    }

    #[tokio::test]
    async fn a_waiting_loop_wakes_on_send() {
        let mailbox = Arc::new(Mailbox::default());
        let receiver = tokio::spawn({
            let mailbox = mailbox.clone();
            async move { mailbox.recv().await }
        });
        tokio::task::yield_now().await;
        assert!(mailbox.send(Control::Stop).is_ok());
        let received = tokio::time::timeout(Duration::from_secs(5), receiver)
            .await
            .expect("woken")
            .expect("no panic");
        assert!(is_stop(&received));
    }

    #[tokio::test]
    async fn push_edges_wake_the_loop_after_its_messages() {
        let mailbox = Arc::new(Mailbox::default());
        mailbox.wake_for_push();
        mailbox.wake_for_push();
        assert!(mailbox.send(Control::Stop).is_ok());
        assert!(is_stop(&mailbox.recv().await));
        // Two edges before the loop looked: one wake-up.
        assert!(matches!(mailbox.recv().await, Control::PushEdges));
        let again = tokio::time::timeout(Duration::from_millis(50), mailbox.recv());
        assert!(again.await.is_err(), "no second wake-up for the same edges");
    }

    #[test]
    fn pushed_edges_go_at_once_unless_a_push_window_is_open() {
        let now = Instant::now();
        let later = now + Duration::from_millis(250);
        assert_eq!(push_turn(None, now), None, "no window yet");
        assert_eq!(
            push_turn(Some(later), now),
            Some(later),
            "inside the window"
        );
        assert_eq!(push_turn(Some(later), later), None, "the window has ended");
        assert_eq!(push_turn(Some(now), later), None);
    }

    /// The loop takes edges at 0, the window ends at 250 ms; an edge at 10 ms is delivered at
    /// 250 ms, not before and not never.
    #[tokio::test(start_paused = true)]
    async fn an_edge_inside_the_push_window_is_delivered_when_it_ends() {
        let mailbox = Arc::new(Mailbox::default());
        let start = Instant::now();
        mailbox.wake_for_push();
        assert!(matches!(mailbox.recv().await, Control::PushEdges));
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the first edge goes at once"
        );
        mailbox.hold_push_until(start + Duration::from_millis(250));

        tokio::time::sleep(Duration::from_millis(10)).await;
        mailbox.wake_for_push();
        mailbox.wake_for_push();
        assert!(matches!(mailbox.recv().await, Control::PushEdges));
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(250),
            "held to the window's end, and delivered then"
        );
        // Both edges were one wake-up: nothing else is waiting.
        let again = tokio::time::timeout(Duration::from_secs(3600), mailbox.recv());
        assert!(again.await.is_err(), "no second wake-up for the same edges");
    }

    #[tokio::test(start_paused = true)]
    async fn messages_pass_a_held_push_window() {
        let mailbox = Arc::new(Mailbox::default());
        mailbox.hold_push_until(Instant::now() + Duration::from_secs(60));
        mailbox.wake_for_push();
        assert!(mailbox.send(Control::Stop).is_ok());
        let received = tokio::time::timeout(Duration::from_millis(1), mailbox.recv());
        assert!(is_stop(&received.await.expect("a stop is not held back")));
    }

    #[test]
    fn sending_to_an_ended_loop_gives_the_message_back() {
        let mailbox = Mailbox::default();
        mailbox.close();
        assert!(matches!(mailbox.send(Control::Stop), Err(Control::Stop)));
    }
}
