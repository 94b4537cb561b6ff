// The rules the API applies to a passenger's name and email (and to the
// last name a booking is looked up with), checked here first so that the
// customer is told at once, next to the field. The API stays the judge: its
// answer is shown the same way.

const NAME_MAX = 64; // characters, trimmed and NFC-normalised
const EMAIL_MAX = 254;
// Letters of any script (Unicode's Alphabetic, as the API's Rust
// `is_alphabetic`) and combining marks, spaces, hyphens, apostrophes and
// dots; at least one letter.
const NAME_CHARS = /^[\p{Alphabetic}\p{M} '’.-]+$/u;
const LETTER = /\p{Alphabetic}/u;
// A passenger's name must be one a ticket can carry: Latin letters
// (accented ones too), spaces, hyphens and apostrophes; the API also
// holds given and family name to 55 characters together.
const TICKET_CHARS = /^[\p{Script=Latin}\p{M} '’-]+$/u;
const LATIN_LETTER = /\p{Script=Latin}/u;

export const FIELDS = ['givenName', 'familyName', 'email'];

const WHAT = { givenName: 'the given name', familyName: 'the family name', lastName: 'the last name' };

// What is wrong with a name, or ''. `field` names it in the message.
export function nameProblem(value, field) {
  const name = value.trim().normalize('NFC');
  if (!name) return `Enter ${WHAT[field]}.`;
  if ([...name].length > NAME_MAX) return `Use at most ${NAME_MAX} characters.`;
  if (field !== 'lastName' && (!TICKET_CHARS.test(name) || !LATIN_LETTER.test(name))) {
    return 'Use Latin letters (accents are fine), spaces, hyphens and apostrophes only.';
  }
  if (!NAME_CHARS.test(name) || !LETTER.test(name)) return 'Use letters, spaces, hyphens, apostrophes and dots only.';
  return '';
}

// An email is optional; one that is given must look like one: no spaces,
// one @ with something before it, a domain with a dot inside it.
function emailValid(email) {
  const at = email.indexOf('@');
  const domain = email.slice(at + 1);
  return (
    [...email].length <= EMAIL_MAX &&
    !/[\s\p{Cc}]/u.test(email) &&
    at > 0 &&
    !domain.includes('@') &&
    domain.includes('.') &&
    !domain.startsWith('.') &&
    !domain.endsWith('.')
  );
}

export function emailProblem(value) {
  const email = value.trim();
  return !email || emailValid(email) ? '' : 'Enter an email address like name@example.com, or leave it empty.';
}

export const fieldProblem = (field, value) => (field === 'email' ? emailProblem(value) : nameProblem(value, field));

// A passenger as the API takes it: trimmed, no empty email.
export function passengerBody(seat, row) {
  const p = { seat, givenName: row.givenName.trim(), familyName: row.familyName.trim() };
  const email = row.email.trim();
  if (email) p.email = email;
  return p;
}
