//! QR codes of a provisioning URI, as SVG and PNG (feature `qr`).

use auth_service::{ConfigError, Error, Result};
use qrcode::{Color, EcLevel, QrCode};

/// Quiet zone around the code, in modules (the QR standard's minimum).
const QUIET: usize = 4;

fn code(data: &str) -> Result<QrCode> {
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).map_err(|e| {
        Error::Configuration(ConfigError::invalid(
            "otpauth URI",
            format!("cannot be drawn as a QR code: {e}"),
        ))
    })
}

/// `data` as an SVG document (black on white, at least 200 px wide).
///
/// ```
/// let svg = auth_mfa::qr_svg("otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP").unwrap();
/// assert!(svg.contains("<svg"));
/// ```
///
/// # Errors
///
/// [`Error::Configuration`] when `data` is too long for a QR code.
pub fn qr_svg(data: &str) -> Result<String> {
    Ok(code(data)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// `data` as a PNG image (1-bit grayscale, `scale` pixels per module, 1 to 32).
///
/// ```
/// let png = auth_mfa::qr_png("otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP", 4).unwrap();
/// assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
/// ```
///
/// # Errors
///
/// [`Error::Configuration`] when `data` is too long for a QR code.
pub fn qr_png(data: &str, scale: u32) -> Result<Vec<u8>> {
    let code = code(data)?;
    let scale = scale.clamp(1, 32) as usize;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * scale;
    let row_bytes = side.div_ceil(8);
    // 1 bit per pixel, 1 = white.
    let mut pixels = vec![0xffu8; row_bytes * side];
    for y in 0..modules {
        for x in 0..modules {
            if colors[y * modules + x] != Color::Dark {
                continue;
            }
            for dy in 0..scale {
                let py = (y + QUIET) * scale + dy;
                for dx in 0..scale {
                    let px = (x + QUIET) * scale + dx;
                    pixels[py * row_bytes + px / 8] &= !(0x80 >> (px % 8));
                }
            }
        }
    }
    let side = u32::try_from(side).unwrap_or(u32::MAX);
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let png_error = |e: png::EncodingError| Error::backend("encoding a QR code as PNG", e);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(&pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)?;
    Ok(out)
}
