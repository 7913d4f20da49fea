//! `sign`, `check-signature`, `mint-call-token`: the tools users reach for when Twilio says
//! "signature mismatch". (Implementation pending in this file.)
