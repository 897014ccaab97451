// Avatars: the server names an animal per guest; the page draws it as an emoji on a
// colour derived from the user id. Unknown names fall back to their first letter.

const ANIMALS = {
  ant: "🐜", badger: "🦡", bat: "🦇", bear: "🐻", beaver: "🦫", bee: "🐝", bird: "🐦", bison: "🦬",
  boar: "🐗", bug: "🐛", butterfly: "🦋", camel: "🐫", cat: "🐱", chick: "🐤", chicken: "🐔",
  cow: "🐮", crab: "🦀", crocodile: "🐊", deer: "🦌", dodo: "🦤", dog: "🐶", dolphin: "🐬",
  dove: "🕊️", dragon: "🐉", duck: "🦆", eagle: "🦅", elephant: "🐘", fish: "🐟", flamingo: "🦩",
  falcon: "🦅", fox: "🦊", frog: "🐸", giraffe: "🦒", goat: "🐐", gorilla: "🦍", hamster: "🐹", hedgehog: "🦔",
  hippo: "🦛", horse: "🐴", kangaroo: "🦘", koala: "🐨", ladybug: "🐞", leopard: "🐆", lion: "🦁",
  lizard: "🦎", llama: "🦙", lobster: "🦞", mammoth: "🦣", monkey: "🐵", moose: "🫎", mouse: "🐭",
  octopus: "🐙", orangutan: "🦧", otter: "🦦", owl: "🦉", ox: "🐂", panda: "🐼", parrot: "🦜",
  peacock: "🦚", penguin: "🐧", pig: "🐷", poodle: "🐩", rabbit: "🐰", raccoon: "🦝", ram: "🐏",
  rhino: "🦏", rooster: "🐓", seal: "🦭", shark: "🦈", sheep: "🐑", shrimp: "🦐", skunk: "🦨",
  sloth: "🦥", snail: "🐌", snake: "🐍", spider: "🕷️", squid: "🦑", swan: "🦢", tiger: "🐯",
  turkey: "🦃", turtle: "🐢", unicorn: "🦄", whale: "🐳", wolf: "🐺", zebra: "🦓",
};

/** The glyph for an avatar name. */
export function avatarGlyph(name) {
  const key = String(name || "").toLowerCase();
  return ANIMALS[key] || (key ? key[0].toUpperCase() : "?");
}

/** A stable hue per user, so the same person keeps the same colour everywhere. */
export function avatarHue(userId) {
  return (Number(userId) * 137) % 360;
}

/** Fills `el` (a span) with the user's avatar; text only. */
export function paintAvatar(el, user) {
  el.textContent = avatarGlyph(user?.avatar);
  el.style.setProperty("--avatar-hue", String(avatarHue(user?.id ?? 0)));
  el.title = user?.avatar ? `${user.avatar}` : "";
}
