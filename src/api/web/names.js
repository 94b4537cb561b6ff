// The rules the API applies to a passenger's name and email (and to the
// last name a booking is looked up with), checked here first so that the
// customer is told at once, next to the field. The API stays the judge: its
// answer is shown the same way.

const NAME_MAX = 64;
// Letters of any script (with their combining marks), spaces, hyphens,
// apostrophes and dots.
const NAME_CHARS = /^[\p{L}\p{M} '’.-]+$/u;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export const FIELDS = ['givenName', 'familyName', 'email'];

const WHAT = { givenName: 'the given name', familyName: 'the family name', lastName: 'the last name' };

// What is wrong with a name, or ''. `field` names it in the message.
export function nameProblem(value, field) {
  const name = value.trim();
  if (!name) return `Enter ${WHAT[field]}.`;
  if ([...name].length > NAME_MAX) return `Use at most ${NAME_MAX} characters.`;
  if (!NAME_CHARS.test(name)) return 'Use letters, spaces, hyphens, apostrophes and dots only.';
  return '';
}

// An email is optional; one that is given must look like one.
export function emailProblem(value) {
  const email = value.trim();
  if (!email || (email.length <= 254 && EMAIL.test(email))) return '';
  return 'Enter an email address like name@example.com, or leave it empty.';
}

export const fieldProblem = (field, value) => (field === 'email' ? emailProblem(value) : nameProblem(value, field));

// A passenger as the API takes it: trimmed, no empty email.
export function passengerBody(seat, row) {
  const p = { seat, givenName: row.givenName.trim(), familyName: row.familyName.trim() };
  const email = row.email.trim();
  if (email) p.email = email;
  return p;
}
