fn main() {
    tune_allocator();
    std::process::exit(btsx::app::run());
}

/// Message bodies are large, short-lived buffers. glibc's dynamic mmap threshold would move
/// them onto per-thread heaps after the first free, where freed memory stays resident: pin the
/// threshold so buffers of 256 KiB and more are always mmapped and go back to the OS at once,
/// and keep the number of arenas small. Peak RSS then follows what is really in use.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    const M_MMAP_THRESHOLD: i32 = -3;
    const M_ARENA_MAX: i32 = -8;
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 256 * 1024);
        mallopt(M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
