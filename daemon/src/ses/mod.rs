//! GB/T 38540 v4 SES_Seal / SES_Signature: build, parse (also GM/T 0031 v1), verify.

pub mod der;
