#!/bin/sh
# Build target/appimage/Softline-x86_64.AppImage from a release binary.
# Needs appimagetool on PATH (the release workflow downloads it; it is not a
# Debian package, so `cargo xtask package` does not build the AppImage).
set -eu
BIN=${1:-target/release/softline}
OUT=target/appimage
APPDIR=$OUT/Softline.AppDir
rm -rf "$APPDIR" && mkdir -p "$APPDIR/usr/bin" "$APPDIR/usr/share/applications" \
  "$APPDIR/usr/share/icons/hicolor/256x256/apps"
cp "$BIN" "$APPDIR/usr/bin/softline"
cp packaging/linux/softline.desktop "$APPDIR/usr/share/applications/"
cp packaging/linux/softline.desktop "$APPDIR/softline.desktop"
cp assets/icons/softline-256.png "$APPDIR/usr/share/icons/hicolor/256x256/apps/softline.png"
cp assets/icons/softline-256.png "$APPDIR/softline.png"
cat > "$APPDIR/AppRun" <<'RUN'
#!/bin/sh
HERE=$(dirname "$(readlink -f "$0")")
exec "$HERE/usr/bin/softline" "$@"
RUN
chmod +x "$APPDIR/AppRun"
if ! command -v appimagetool >/dev/null; then
  curl -fsSL -o "$OUT/appimagetool" \
    https://github.com/AppImage/appimagetool/releases/download/continuous/appimagetool-x86_64.AppImage
  chmod +x "$OUT/appimagetool"
  TOOL="$OUT/appimagetool --appimage-extract-and-run"
else
  TOOL=appimagetool
fi
ARCH=x86_64 $TOOL "$APPDIR" "$OUT/Softline-x86_64.AppImage"
