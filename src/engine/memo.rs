//! Per-host values that modules compute once and share (the registry files, whose htpasswd
//! costs a bcrypt per user, are read by two modules), so the runner needs no module's name.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub(crate) struct Memo(Mutex<HashMap<&'static str, Arc<dyn Any + Send + Sync>>>);

impl Memo {
    /// The value under `key`, made by `make` the first time.
    pub fn get_or<T: Any + Send + Sync>(
        &self,
        key: &'static str,
        make: impl FnOnce() -> T,
    ) -> Arc<T> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = map.get(key).and_then(|v| v.clone().downcast::<T>().ok()) {
            return v;
        }
        let v = Arc::new(make());
        map.insert(key, v.clone());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once() {
        let memo = Memo::default();
        let mut calls = 0;
        for _ in 0..3 {
            let v = memo.get_or("k", || {
                calls += 1;
                7u32
            });
            assert_eq!(*v, 7);
        }
        assert_eq!(calls, 1);
    }
}
