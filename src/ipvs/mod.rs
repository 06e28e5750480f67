//! The kernel side: IPVS services and destinations.
//!
//! Only this module speaks the kernel's words (service, destination);
//! the config speaks the operator's (virtual, real). The netlink kernel,
//! the desired-table computation and the diff arrive with the health
//! pipeline.

pub mod table;
