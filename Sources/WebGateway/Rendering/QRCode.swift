import CQRencode

/// A QR code as SVG, drawn by the server from libqrencode's modules: the two-factor enrolment
/// page shows the `otpauth://` URI this way, so no script and no outside service sees the secret.
enum QRCode {
    /// The SVG of `text` (medium error correction), or nil when it is too long for a QR code.
    static func svg(_ text: String, moduleSize: Int = 6) -> String? {
        guard let code = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1) else { return nil }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        let quiet = 4
        let side = (width + 2 * quiet) * moduleSize
        var path = ""
        for y in 0..<width {
            for x in 0..<width where code.pointee.data[y * width + x] & 1 == 1 {
                path += "M\((x + quiet) * moduleSize) \((y + quiet) * moduleSize)h\(moduleSize)v\(moduleSize)h-\(moduleSize)z"
            }
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(side) \(side)" width="\(side)" height="\(side)" role="img" \
            aria-label="QR code for your authenticator app"><rect width="\(side)" height="\(side)" fill="#fff"/>\
            <path d="\(path)" fill="#000"/></svg>
            """
    }
}
