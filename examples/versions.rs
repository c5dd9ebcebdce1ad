//! Prints the bundled libev's version and the backends it offers here.
//!
//! Run with `cargo run --example versions`.

fn main() {
    // SAFETY: these libev functions take no arguments and only read
    // compile-time facts or probe the kernel; any thread may call them.
    let (major, minor, supported, recommended, embeddable) = unsafe {
        (
            libev_sys::ev_version_major(),
            libev_sys::ev_version_minor(),
            libev_sys::ev_supported_backends(),
            libev_sys::ev_recommended_backends(),
            libev_sys::ev_embeddable_backends(),
        )
    };
    println!("libev {major}.{minor}");
    println!("supported backends:   {supported:#06x}");
    println!("recommended backends: {recommended:#06x}");
    println!("embeddable backends:  {embeddable:#06x}");
}
