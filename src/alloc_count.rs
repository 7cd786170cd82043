//! Heap allocation counting for benchmarks (cargo feature `count-allocs`):
//! `benches/e2e.sh` reads the total from `/metrics` before and after a run to
//! report allocations per statement, so a regression on the hot path shows.
//!
//! Counting must not itself add a shared cache line to every allocation: each
//! thread adds to its own padded slot, and a scrape sums the slots. Without
//! the feature nothing is installed and [`total`] is `None`.

#[cfg(feature = "count-allocs")]
mod imp {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    const SLOTS: usize = 64;

    #[repr(align(64))]
    struct Slot(AtomicU64);

    static COUNTS: [Slot; SLOTS] = [const { Slot(AtomicU64::new(0)) }; SLOTS];
    static NEXT: AtomicUsize = AtomicUsize::new(0);

    thread_local! {
        // No destructor and const-initialised: safe to touch from inside
        // the allocator.
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }

    fn count() {
        let slot = MINE
            .try_with(|m| {
                if m.get() == usize::MAX {
                    m.set(NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS);
                }
                m.get()
            })
            .unwrap_or(0);
        if let Some(s) = COUNTS.get(slot) {
            s.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub struct Counting;

    // SAFETY: every call is forwarded unchanged to the system allocator.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            unsafe { System.alloc(layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count();
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            unsafe { System.realloc(ptr, layout, new_size) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    pub fn total() -> u64 {
        COUNTS.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

/// Allocations (including reallocations) made by the process so far, when
/// built with the `count-allocs` feature.
pub fn total() -> Option<u64> {
    #[cfg(feature = "count-allocs")]
    {
        Some(imp::total())
    }
    #[cfg(not(feature = "count-allocs"))]
    {
        None
    }
}
