//! Telling a connection that broke from one that ended. An answer whose body runs until the
//! connection closes (no length, not chunked) ends the same way for ureq whether the server
//! closed the connection or it was reset: the transports here note, on the thread reading,
//! that a read failed with a reset, so that the end of such a body can be told a `reset`
//! rather than a stream cut short.

use std::cell::Cell;
use std::io::ErrorKind;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, NextTimeout, Transport,
};

thread_local! {
    static RESET: Cell<bool> = const { Cell::new(false) };
}

/// Whether a read on this thread met a reset since the last call (which forgets it).
pub fn take() -> bool {
    RESET.with(|r| r.replace(false))
}

/// ureq's default connector, its transports noting resets.
#[derive(Debug, Default)]
pub struct NotingConnector(DefaultConnector);

impl Connector<()> for NotingConnector {
    type Out = Noting;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Noting>, ureq::Error> {
        Ok(self.0.connect(details, chained)?.map(Noting))
    }
}

/// A transport that notes a read that failed with a reset.
#[derive(Debug)]
pub struct Noting(Box<dyn Transport>);

impl Transport for Noting {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.0.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.0.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let read = self.0.await_input(timeout);
        if let Err(ureq::Error::Io(e)) = &read {
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ) {
                RESET.with(|r| r.set(true));
            }
        }
        read
    }

    fn is_open(&mut self) -> bool {
        self.0.is_open()
    }

    fn is_tls(&self) -> bool {
        self.0.is_tls()
    }
}
