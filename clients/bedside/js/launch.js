// launch.html: the EHR's launch URL (SMART EHR launch: ?iss=<this FHIR
// base>&launch=<opaque>). Hands over to the authorization server; it sends
// the nurse back to /bedside/, which finishes the sign-in (smart.js).
import { ehrLaunch } from './smart.js';

ehrLaunch().catch((err) => {
  const m = document.querySelector('#launch-message');
  m.textContent = `The app could not start: ${err.message}`;
  m.hidden = false;
  document.querySelector('#launch-title').textContent = 'Could not start';
});
