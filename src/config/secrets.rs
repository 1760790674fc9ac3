//! Passwords in the OS keyring (placeholder, filled in below).
