//! BFD control packets (RFC 5880 §4.1), pure: decode with every reception rule of §6.8.6 plus keepalived 2.2.7's extra checks (`bfd_check_packet`), and encode; never touches a socket.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! ```
//!
//! keepalived (and keepmon) use no authentication: a packet with the A bit
//! is discarded. keepalived also wants the Length field to equal the
//! datagram's size (the RFC only wants it not larger), refuses P and F
//! together and a diagnostic above 8; keepmon does the same, so the two
//! accept exactly the same packets.

use thiserror::Error;

/// The size of a control packet without authentication.
pub const PACKET_LEN: usize = 24;
/// The only protocol version.
pub const VERSION: u8 = 1;
/// The highest diagnostic code keepalived accepts (Reverse Concatenated Path Down).
pub const MAX_DIAG: u8 = 8;

/// A session state as carried in the Sta field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    AdminDown,
    Down,
    Init,
    Up,
}

impl State {
    fn from_bits(bits: u8) -> State {
        match bits & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    /// The name keepalived logs ("AdminDown", "Down", "Init", "Up").
    pub fn name(self) -> &'static str {
        match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        }
    }
}

/// Diagnostic codes (RFC 5880 §4.1) keepalived sends.
pub mod diag {
    pub const NONE: u8 = 0;
    pub const EXPIRED: u8 = 1;
    pub const NEIGHBOR_SIGNALED_DOWN: u8 = 3;
    pub const ADMIN_DOWN: u8 = 7;

    /// The text keepalived logs for a code.
    pub fn name(code: u8) -> &'static str {
        match code {
            0 => "No Diagnostic",
            1 => "Control Detection Time Expired",
            2 => "Echo Function Failed",
            3 => "Neighbor Signaled Session Down",
            4 => "Forwarding Plane Reset",
            5 => "Path Down",
            6 => "Concatenated Path Down",
            7 => "Administratively Down",
            8 => "Reverse Concatenated Path Down",
            _ => "Unknown",
        }
    }
}

/// A valid control packet without authentication. Intervals are in
/// microseconds, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlPacket {
    pub diag: u8,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    pub control_plane_independent: bool,
    pub demand: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx: u32,
    pub required_min_rx: u32,
    pub required_min_echo_rx: u32,
}

/// Why a datagram is not a control packet keepmon accepts.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("packet is too small: {0} bytes")]
    TooShort(usize),
    #[error("packet size mismatch: length field {field} bytes, datagram {datagram} bytes")]
    LengthMismatch { field: u8, datagram: usize },
    #[error("unsupported version {0}")]
    Version(u8),
    #[error("detection multiplier is zero")]
    ZeroMultiplier,
    #[error("multipoint flag set")]
    Multipoint,
    #[error("my discriminator is zero")]
    ZeroMyDiscriminator,
    #[error("your discriminator is zero and state is {0}")]
    ZeroYourDiscriminator(&'static str),
    #[error("both poll and final flags set")]
    PollAndFinal,
    #[error("invalid diagnostic {0}")]
    Diagnostic(u8),
    #[error("authentication bit set, but no authentication is in use")]
    Authentication,
}

/// Decodes one datagram, applying the reception checks in keepalived's
/// order (size, length field, version, multiplier, multipoint, my
/// discriminator, your discriminator against the state, P with F,
/// diagnostic), then the authentication bit.
pub fn decode(datagram: &[u8]) -> Result<ControlPacket, DecodeError> {
    if datagram.len() < PACKET_LEN {
        return Err(DecodeError::TooShort(datagram.len()));
    }
    let field = datagram[3];
    if usize::from(field) != datagram.len() {
        return Err(DecodeError::LengthMismatch {
            field,
            datagram: datagram.len(),
        });
    }
    let version = datagram[0] >> 5;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let detect_mult = datagram[2];
    if detect_mult == 0 {
        return Err(DecodeError::ZeroMultiplier);
    }
    let flags = datagram[1];
    if flags & 0x01 != 0 {
        return Err(DecodeError::Multipoint);
    }
    let word = |at: usize| {
        u32::from_be_bytes([
            datagram[at],
            datagram[at + 1],
            datagram[at + 2],
            datagram[at + 3],
        ])
    };
    let my_discr = word(4);
    if my_discr == 0 {
        return Err(DecodeError::ZeroMyDiscriminator);
    }
    let state = State::from_bits(flags >> 6);
    let your_discr = word(8);
    if your_discr == 0 && !matches!(state, State::Down | State::AdminDown) {
        return Err(DecodeError::ZeroYourDiscriminator(state.name()));
    }
    let poll = flags & 0x20 != 0;
    let final_ = flags & 0x10 != 0;
    if poll && final_ {
        return Err(DecodeError::PollAndFinal);
    }
    let diag = datagram[0] & 0x1f;
    if diag > MAX_DIAG {
        return Err(DecodeError::Diagnostic(diag));
    }
    if flags & 0x04 != 0 {
        return Err(DecodeError::Authentication);
    }
    Ok(ControlPacket {
        diag,
        state,
        poll,
        final_,
        control_plane_independent: flags & 0x08 != 0,
        demand: flags & 0x02 != 0,
        detect_mult,
        my_discr,
        your_discr,
        desired_min_tx: word(12),
        required_min_rx: word(16),
        required_min_echo_rx: word(20),
    })
}

/// The 24 bytes of a packet (no authentication section).
pub fn encode(packet: &ControlPacket) -> [u8; PACKET_LEN] {
    let mut out = [0u8; PACKET_LEN];
    out[0] = (VERSION << 5) | (packet.diag & 0x1f);
    out[1] = (packet.state.bits() << 6)
        | (u8::from(packet.poll) << 5)
        | (u8::from(packet.final_) << 4)
        | (u8::from(packet.control_plane_independent) << 3)
        | (u8::from(packet.demand) << 1);
    out[2] = packet.detect_mult;
    // PACKET_LEN is 24: it fits the one-byte Length field.
    out[3] = PACKET_LEN as u8;
    out[4..8].copy_from_slice(&packet.my_discr.to_be_bytes());
    out[8..12].copy_from_slice(&packet.your_discr.to_be_bytes());
    out[12..16].copy_from_slice(&packet.desired_min_tx.to_be_bytes());
    out[16..20].copy_from_slice(&packet.required_min_rx.to_be_bytes());
    out[20..24].copy_from_slice(&packet.required_min_echo_rx.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ControlPacket {
        ControlPacket {
            diag: diag::EXPIRED,
            state: State::Up,
            poll: true,
            final_: false,
            control_plane_independent: false,
            demand: false,
            detect_mult: 5,
            my_discr: 0x1234_5678,
            your_discr: 0x9abc_def0,
            desired_min_tx: 10_000,
            required_min_rx: 20_000,
            required_min_echo_rx: 0,
        }
    }

    #[test]
    fn round_trip_and_wire_layout() {
        let packet = sample();
        let bytes = encode(&packet);
        assert_eq!(
            bytes,
            [
                0x21, 0xe0, 5, 24, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0, 0, 0x27,
                0x10, 0, 0, 0x4e, 0x20, 0, 0, 0, 0
            ]
        );
        assert_eq!(decode(&bytes), Ok(packet));
        for state in [State::AdminDown, State::Down, State::Init, State::Up] {
            for (poll, final_) in [(false, false), (true, false), (false, true)] {
                let p = ControlPacket {
                    state,
                    poll,
                    final_,
                    demand: true,
                    control_plane_independent: true,
                    diag: MAX_DIAG,
                    ..sample()
                };
                assert_eq!(decode(&encode(&p)), Ok(p));
            }
        }
    }

    /// Each reception rule, by changing one thing of a valid packet.
    #[test]
    fn every_invalid_packet_rule() {
        let good = encode(&sample());
        let with = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = good.to_vec();
            edit(&mut bytes);
            decode(&bytes)
        };
        assert_eq!(decode(&good[..23]), Err(DecodeError::TooShort(23)));
        assert_eq!(decode(&[]), Err(DecodeError::TooShort(0)));
        assert_eq!(
            with(&|b| b.push(0)),
            Err(DecodeError::LengthMismatch {
                field: 24,
                datagram: 25
            })
        );
        assert_eq!(
            with(&|b| b[3] = 23),
            Err(DecodeError::LengthMismatch {
                field: 23,
                datagram: 24
            })
        );
        assert_eq!(with(&|b| b[0] = (2 << 5) | 1), Err(DecodeError::Version(2)));
        assert_eq!(with(&|b| b[0] &= 0x1f), Err(DecodeError::Version(0)));
        assert_eq!(with(&|b| b[2] = 0), Err(DecodeError::ZeroMultiplier));
        assert_eq!(with(&|b| b[1] |= 0x01), Err(DecodeError::Multipoint));
        assert_eq!(
            with(&|b| b[4..8].fill(0)),
            Err(DecodeError::ZeroMyDiscriminator)
        );
        assert_eq!(
            with(&|b| b[8..12].fill(0)),
            Err(DecodeError::ZeroYourDiscriminator("Up"))
        );
        assert_eq!(
            with(&|b| {
                b[8..12].fill(0);
                b[1] = (b[1] & 0x3f) | (2 << 6);
            }),
            Err(DecodeError::ZeroYourDiscriminator("Init"))
        );
        // Down and AdminDown may not know the peer's discriminator yet.
        for state in [0u8, 1] {
            let decoded = with(&|b| {
                b[8..12].fill(0);
                b[1] = (b[1] & 0x3f) | (state << 6);
            });
            assert!(decoded.is_ok(), "state {state}: {decoded:?}");
        }
        assert_eq!(with(&|b| b[1] |= 0x30), Err(DecodeError::PollAndFinal));
        assert_eq!(
            with(&|b| b[0] = (1 << 5) | 9),
            Err(DecodeError::Diagnostic(9))
        );
        assert_eq!(with(&|b| b[1] |= 0x04), Err(DecodeError::Authentication));
        // An authenticated packet is longer than 24 bytes: still refused.
        assert_eq!(
            with(&|b| {
                b[1] |= 0x04;
                b[3] = 33;
                b.extend([1, 9, 1, 0, 0, 0, 0, 0, 0]);
            }),
            Err(DecodeError::Authentication)
        );
    }
}
