//! A step's gate: at most `slots` hosts inside at once, and a free slot goes to the waiting
//! host first in the inventory, so a roll goes in inventory order wherever hosts meet (the
//! first lb, keepalived's highest priority, takes the VIP first). A host queues before it may
//! enter (`queue`, then `Ticket::enter`): hosts that queue, then wait for the others together
//! (`wait_for_all`), still enter in inventory order, whichever of them was woken first.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

pub(super) struct Gate {
    slots: usize,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Default)]
struct State {
    inside: usize,
    /// Queued hosts, by inventory index.
    queued: BTreeSet<usize>,
}

/// A host's place in a gate's queue (it leaves the queue when it enters, or is dropped).
pub(super) struct Ticket<'g> {
    gate: &'g Gate,
    host: usize,
}

/// A host inside the gate; its slot frees when this is dropped.
pub(super) struct Inside<'g>(&'g Gate);

impl Gate {
    pub fn new(slots: usize) -> Gate {
        Gate {
            slots: slots.max(1),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue host `host` (its index in the inventory).
    pub fn queue(&self, host: usize) -> Ticket<'_> {
        self.state().queued.insert(host);
        Ticket { gate: self, host }
    }
}

impl<'g> Ticket<'g> {
    /// Wait until a slot is free and no host before this one in the inventory is queued.
    pub async fn enter(self) -> Inside<'g> {
        let gate = self.gate;
        loop {
            let changed = gate.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so a release between the check and the wait wakes it.
            changed.as_mut().enable();
            {
                let mut s = gate.state();
                if s.inside < gate.slots && s.queued.first() == Some(&self.host) {
                    s.queued.remove(&self.host);
                    s.inside += 1;
                    return Inside(gate);
                }
            }
            changed.await;
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.gate.state().queued.remove(&self.host);
        self.gate.changed.notify_waiters();
    }
}

impl Drop for Inside<'_> {
    fn drop(&mut self) {
        self.0.state().inside -= 1;
        self.0.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn enter_and_note(ticket: Ticket<'_>, host: usize, order: &Mutex<Vec<usize>>) {
        let _inside = ticket.enter().await;
        order.lock().unwrap().push(host);
        tokio::task::yield_now().await;
    }

    #[tokio::test]
    async fn a_free_slot_goes_to_the_first_queued_host_in_the_inventory() {
        let gate = Gate::new(1);
        let inside = gate.queue(3).enter().await;
        // Host 5 queued before host 1 and is polled first, yet host 1 goes in first.
        let five = gate.queue(5);
        let one = gate.queue(1);
        let order = Mutex::new(Vec::new());
        let release = async {
            tokio::task::yield_now().await;
            drop(inside);
        };
        let both = async {
            tokio::join!(
                enter_and_note(five, 5, &order),
                enter_and_note(one, 1, &order),
                release
            )
        };
        let bound = std::time::Duration::from_secs(5);
        tokio::time::timeout(bound, both)
            .await
            .expect("a host never got in");
        assert_eq!(*order.lock().unwrap(), [1, 5]);
        // Two slots: two hosts inside at once.
        let two = Gate::new(2);
        let _a = two.queue(2).enter().await;
        let b = tokio::time::timeout(bound, two.queue(1).enter()).await;
        assert!(b.is_ok(), "the second slot was not free");
    }
}
