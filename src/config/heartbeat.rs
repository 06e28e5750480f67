//! Readers for heartbeat 3's ha.cf, haresources and authkeys.
