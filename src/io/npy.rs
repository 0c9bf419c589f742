//! NumPy `.npy` (format 1.0) for complex k-space export: `numpy.load` reads it directly.

/// Encodes a C-order complex64 array of `shape` (`data` holds (re, im) pairs).
pub fn encode_complex64(shape: &[usize], data: &[[f32; 2]]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_txt = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<c8', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for [re, im] in data {
        out.extend_from_slice(&re.to_le_bytes());
        out.extend_from_slice(&im.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_data_follows() {
        let b = encode_complex64(&[2, 3], &[[1.0, -1.0]; 6]);
        assert_eq!(&b[..6], b"\x93NUMPY");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.contains("'descr': '<c8'") && header.contains("'shape': (2, 3)"));
        assert_eq!(b.len(), 10 + hlen + 6 * 8);
        assert_eq!(
            f32::from_le_bytes(b[10 + hlen..14 + hlen].try_into().unwrap()),
            1.0
        );
    }
}
