// What herald's API answers, as TypeScript types. They follow the Rust
// types' JSON (crates/core/src/operation.rs, timeline.rs, notify.rs and the
// server's api/views.rs); a field herald adds later is simply not named here.
//
// Types only: this module compiles to nothing, so the runtime stays one file.
export {};
