// launch.html: where every sign-in starts, on a fresh page (fhirclient reads
// its parameters from the address it was loaded with).
//   launch.html?iss=<this FHIR base>&launch=<opaque>  the EHR's launch URL
//                                                     (SMART EHR launch)
//   launch.html                                       "Sign in with your
//                                                     organization" (standalone)
// Hands over to the authorization server, which sends the nurse back to
// /bedside/, where the sign-in finishes (smart.js).
import { ehrLaunch, standaloneLaunch } from './smart.js';

const params = new URLSearchParams(location.search);
const start = params.has('iss') || params.has('launch') ? ehrLaunch : standaloneLaunch;
start().catch((err) => {
  const m = document.querySelector('#launch-message');
  m.textContent = `The app could not start: ${err.message}`;
  m.hidden = false;
  document.querySelector('#launch-title').textContent = 'Could not start';
});
