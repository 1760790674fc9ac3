#!/bin/sh
# Build target/macos/Softline.dmg (an .app bundle in a disk image) from a
# release binary. Recipe for the release workflow's macOS job.
set -eu
BIN=${1:-target/release/softline}
OUT=target/macos
APP=$OUT/Softline.app
rm -rf "$OUT" && mkdir -p "$APP/Contents/MacOS" "$APP/Contents/Resources"
cp "$BIN" "$APP/Contents/MacOS/softline"
cp packaging/macos/Info.plist "$APP/Contents/Info.plist"
mkdir -p "$OUT/icon.iconset"
for s in 16 32 128 256 512; do
  cp "assets/icons/softline-$s.png" "$OUT/icon.iconset/icon_${s}x${s}.png"
done
iconutil -c icns -o "$APP/Contents/Resources/softline.icns" "$OUT/icon.iconset"
hdiutil create -volname Softline -srcfolder "$APP" -ov -format UDZO "$OUT/Softline.dmg"
