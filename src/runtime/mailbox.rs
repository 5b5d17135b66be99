//! The supervisor's line to one scale loop, and its push tasks' doorbell. A loop only ever
//! needs the newest version of its object, so a one-slot mailbox replaces a queue: it costs a
//! few dozen bytes per object where an unbounded channel allocates a block of 32 slots up
//! front. Push edges ring the same bell, so an idle loop waits on one future, not two.

use std::sync::Mutex;

use tokio::sync::Notify;

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

    /// The next message; [`Control::PushEdges`] when only push edges wait. Messages from the
    /// supervisor come first. Cancel-safe: a message is taken only when this returns it.
    pub(crate) async fn recv(&self) -> Control {
        loop {
            {
                let mut slot = self.lock();
                if let Some(message) = slot.message.take() {
                    return message;
                }
                if std::mem::take(&mut slot.push_edges) {
                    return Control::PushEdges;
                }
            }
            self.ready.notified().await;
        }
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
    use super::*;

    fn is_stop(message: &Control) -> bool {
        matches!(message, Control::Stop)
    }

    #[tokio::test]
    async fn a_stop_is_never_replaced_by_a_later_message() {
        let mailbox = Mailbox::default();
        assert!(mailbox.send(Control::Stop).is_ok());
        assert!(mailbox.send(Control::Shutdown).is_ok());
        assert!(is_stop(&mailbox.recv().await));
    }

    #[tokio::test]
    async fn a_message_sent_before_waiting_is_not_lost() {
        let mailbox = std::sync::Arc::new(Mailbox::default());
        assert!(mailbox.send(Control::Shutdown).is_ok());
        let received = tokio::time::timeout(std::time::Duration::from_secs(5), mailbox.recv())
            .await
            .expect("the message waits in the slot");
        assert!(matches!(received, Control::Shutdown));
    }

    #[tokio::test]
    async fn a_waiting_loop_wakes_on_send() {
        let mailbox = std::sync::Arc::new(Mailbox::default());
        let receiver = tokio::spawn({
            let mailbox = mailbox.clone();
            async move { mailbox.recv().await }
        });
        tokio::task::yield_now().await;
        assert!(mailbox.send(Control::Stop).is_ok());
        let received = tokio::time::timeout(std::time::Duration::from_secs(5), receiver)
            .await
            .expect("woken")
            .expect("no panic");
        assert!(is_stop(&received));
    }

    #[tokio::test]
    async fn push_edges_wake_the_loop_after_its_messages() {
        let mailbox = Mailbox::default();
        mailbox.wake_for_push();
        mailbox.wake_for_push();
        assert!(mailbox.send(Control::Stop).is_ok());
        assert!(is_stop(&mailbox.recv().await));
        // Two edges before the loop looked: one wake-up.
        assert!(matches!(mailbox.recv().await, Control::PushEdges));
        let again = tokio::time::timeout(std::time::Duration::from_millis(50), mailbox.recv());
        assert!(again.await.is_err(), "no second wake-up for the same edges");
    }

    #[test]
    fn sending_to_an_ended_loop_gives_the_message_back() {
        let mailbox = Mailbox::default();
        mailbox.close();
        assert!(matches!(mailbox.send(Control::Stop), Err(Control::Stop)));
    }
}
