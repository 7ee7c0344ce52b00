// Languages for the Language preference: every ISO 639-1 code (the two-letter
// BCP-47 primary language subtags) plus a few widely needed languages that only
// have a three-letter code, with readable names from Intl.DisplayNames. Any
// other well-formed BCP-47 tag typed by the nurse (e.g. "pt-BR", "fil") is
// accepted too, checked with Intl.getCanonicalLocales; the server accepts any
// BCP-47 tag. Nothing here touches the page.

const ISO_639_1 = (
  'aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el '
  + 'en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it '
  + 'iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt '
  + 'my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl '
  + 'sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo '
  + 'za zh zu').split(' ');

// Asked for at hospitals and without a two-letter code (ISO 639-2/3).
const THREE_LETTER = ['fil', 'yue', 'cmn', 'hmn', 'haw', 'chr', 'ase', 'bfi', 'kok', 'mni', 'sat'];

const NAMES = new Intl.DisplayNames(['en'], { type: 'language', fallback: 'none' });

// The readable name of a BCP-47 tag ("pt-BR" -> "Brazilian Portuguese"), or
// the tag itself when the browser has no name for it.
// Display names are looked up after canonicalizing, which renames these.
const OWN_NAMES = new Map([['tl', 'Tagalog'], ['cmn', 'Mandarin Chinese'], ['yue', 'Cantonese'], ['tw', 'Twi']]);

export function languageName(tag) {
  if (OWN_NAMES.has(tag)) return OWN_NAMES.get(tag);
  try {
    return NAMES.of(tag) || tag;
  } catch {
    return tag;
  }
}

// [{ tag, name }] sorted by name: what the picker offers.
export const LANGUAGES = [...ISO_639_1, ...THREE_LETTER]
  .map((tag) => ({ tag, name: languageName(tag) }))
  .filter((l) => l.name !== l.tag)
  .sort((a, b) => a.name.localeCompare(b.name, 'en'));

const BY_NAME = new Map(LANGUAGES.map((l) => [l.name.toLowerCase(), l.tag]));
// Names people say that the display names do not use.
for (const [alias, tag] of [['mandarin', 'cmn'], ['cantonese', 'yue'], ['farsi', 'fa'], ['tagalog', 'tl'],
  ['filipino', 'fil'], ['american sign language', 'ase'], ['british sign language', 'bfi']]) {
  if (!BY_NAME.has(alias)) BY_NAME.set(alias, tag);
}

// How a language is offered and shown: "Tagalog (tl)".
export function languageLabel(tag) {
  const name = languageName(tag);
  return name === tag ? tag : `${name} (${tag})`;
}

// "pt-br" -> "pt-BR", "zh-hant" -> "zh-Hant" (BCP-47's conventional case).
function tidyCase(tag) {
  return tag.split('-').map((p, i) => {
    if (i === 0) return p.toLowerCase();
    if (p.length === 4 && /^[A-Za-z]+$/.test(p)) return p[0].toUpperCase() + p.slice(1).toLowerCase();
    if (p.length === 2 || /^\d{3}$/.test(p)) return p.toUpperCase();
    return p.toLowerCase();
  }).join('-');
}

// What the nurse typed or picked -> { tag } or { error }. Accepts a label
// from the list ("Tagalog (tl)"), a name ("tagalog"), or a BCP-47 tag
// ("pt-BR"). A primary subtag of 4+ letters is refused although well formed:
// those are reserved or unused, and a typed word ("Klingonese") is more likely
// a name we do not know than a tag.
export function parseLanguage(input) {
  const text = (input || '').trim();
  if (!text) return { error: 'Choose or type the language.' };
  const labelled = /\(([A-Za-z0-9-]+)\)$/.exec(text);
  const candidate = labelled ? labelled[1] : text;
  const named = BY_NAME.get(text.toLowerCase());
  if (named) return { tag: named };
  if (/^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(candidate)) {
    try {
      // Only a check: canonical forms replace some tags ("tl" -> "fil"), and
      // the tag kept is the one chosen, in its usual letter case.
      Intl.getCanonicalLocales(candidate);
      return { tag: tidyCase(candidate) };
    } catch {
      // not well-formed: fall through
    }
  }
  return { error: `“${text}” is not a language we know: choose one from the list, or type its code (e.g. pt-BR).` };
}
