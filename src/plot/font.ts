/**
 * A 5×8 bitmap font for the PNG rasteriser, printable ASCII (32..126). Each glyph is eight rows of
 * five pixels, top row first, written as two hex digits per row (0x10 is the leftmost pixel). Rows
 * 0..6 sit above the baseline, row 7 holds descenders. The advance is 6 pixels (one blank column),
 * the same width the SVG output reserves per character, so both renderings lay text out alike.
 */
// biome-ignore format: one row of the table per eight characters, starting at ' ' (32).
const GLYPHS: readonly string[] = [
  "0000000000000000", "0404040404000400", "0A0A0A0000000000", "0A0A1F0A1F0A0A00", // space ! " #
  "040F140E051E0400", "1819020408130300", "0C12140815120D00", "0C04080000000000", // $ % & '
  "0204080808040200", "0804020202040800", "0004150E15040000", "0004041F04040000", // ( ) * +
  "000000000C040800", "0000001F00000000", "00000000000C0C00", "0001020408100000", // , - . /
  "0E11131519110E00", "040C040404040E00", "0E11010204081F00", "1F02040201110E00", // 0 1 2 3
  "02060A121F020200", "1F101E0101110E00", "0608101E11110E00", "1F01020408080800", // 4 5 6 7
  "0E11110E11110E00", "0E11110F01020C00", "000C0C000C0C0000", "000C0C000C040800", // 8 9 : ;
  "0204081008040200", "00001F001F000000", "0804020102040800", "0E11010204000400", // < = > ?
  "0E11010D15150E00", "0E1111111F111100", "1E11111E11111E00", "0E11101010110E00", // @ A B C
  "1C12111111121C00", "1F10101E10101F00", "1F10101E10101000", "0E11101711110F00", // D E F G
  "1111111F11111100", "0E04040404040E00", "0702020202120C00", "1112141814121100", // H I J K
  "1010101010101F00", "111B151511111100", "1111191513111100", "0E11111111110E00", // L M N O
  "1E11111E10101000", "0E11111115120D00", "1E11111E14121100", "0F10100E01011E00", // P Q R S
  "1F04040404040400", "1111111111110E00", "11111111110A0400", "1111111515150A00", // T U V W
  "11110A040A111100", "1111110A04040400", "1F01020408101F00", "0E08080808080E00", // X Y Z [
  "0010080402010000", "0E02020202020E00", "040A110000000000", "0000000000001F00", // \ ] ^ _
  "0804020000000000", "00000E010F110F00", "1010161911111E00", "00000E1010110E00", // ` a b c
  "01010D1311110F00", "00000E111F100E00", "0609081C08080800", "00000F11110F010E", // d e f g
  "1010161911111100", "04000C0404040E00", "020006020202120C", "1010121418141200", // h i j k
  "0C04040404040E00", "00001A1515111100", "0000161911111100", "00000E1111110E00", // l m n o
  "00001E11111E1010", "00000F11110F0101", "0000161910101000", "00000E100E011E00", // p q r s
  "08081C0808090600", "0000111111130D00", "00001111110A0400", "0000111115150A00", // t u v w
  "0000110A040A1100", "00001111110F010E", "00001F0204081F00", "0204040804040200", // x y z {
  "0404040404040400", "0804040204040800", "0000081502000000", // | } ~
];

/** Glyph cell: 5 columns drawn, 6 advanced; 7 rows above the baseline, 1 below. */
export const GLYPH_WIDTH = 5;
export const GLYPH_ADVANCE = 6;
export const GLYPH_ASCENT = 7;
export const GLYPH_ROWS = 8;

/** A hollow box, drawn for characters the font does not have. */
const MISSING = "1F11111111111F00";

/** Characters outside ASCII that have an obvious ASCII stand-in. */
const FALLBACK: Readonly<Record<string, string>> = { µ: "u", "×": "x", "–": "-", "—": "-", "…": "." };

/** The eight rows of `ch` as bit masks (0x10 = leftmost column). */
export function glyphRows(ch: string): readonly number[] {
  const c = FALLBACK[ch] ?? ch;
  const code = c.codePointAt(0) ?? 0;
  const hex = code >= 32 && code <= 126 && c.length === 1 ? GLYPHS[code - 32] : MISSING;
  const rows: number[] = [];
  for (let i = 0; i < GLYPH_ROWS; i++) rows.push(Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16));
  return rows;
}
