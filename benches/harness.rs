//! What the harness spends per case when the network is taken away.
//!
//! `cargo bench --bench harness` (divan: medians over many samples). A case is
//! generated, its request under test resolved, encoded and signed, the oracle
//! predicts the answer, the embedded server's XML for that prediction is
//! rendered (the one piece of target work included: it stands in for the
//! bytes a socket would deliver), parsed and checked. Every other request a
//! case makes (fixtures, state reads, clean-up) costs the harness an encode, a
//! signature and a parse: `other_request` times that.

use std::hint::black_box;
use std::time::Duration;

use divan::Bencher;
use iam_conformance::check::{Checker, Level, Window, check_response};
use iam_conformance::keys::{RsaKey, corpus_keys};
use iam_conformance::oracle::{self, Key, Prediction, State, Success, User};
use iam_conformance::runner::cases_of;
use iam_conformance::spec::Operation;
use iam_conformance::suite::Case;
use iam_conformance::wire::{Client, Credentials, Request, Response, classify_body};
use iam_conformance::{Target, TargetKind, catalogue};
use time::OffsetDateTime;

fn main() {
    divan::main();
}

/// A client that only signs: nothing listens on its endpoint.
fn client() -> Client {
    let endpoint = "http://127.0.0.1:9/".parse().expect("a URL");
    let mut target = Target::new(endpoint, TargetKind::Embedded);
    target.credentials = Credentials::dummy();
    Client::new(target, Duration::from_secs(10)).expect("the client builds")
}

/// One case of each class in turn, each class from its own seeded stream.
fn cases() -> impl FnMut() -> Case {
    let mut streams: Vec<_> = catalogue().iter().map(|c| cases_of(c, 1)).collect();
    let mut next = 0;
    move || {
        let case = streams[next].next().expect("case streams are endless");
        next = (next + 1) % streams.len();
        case
    }
}

/// A case's fixtures as a target holds them after set-up, in the oracle's terms.
struct Fixtures {
    users: Vec<String>,
    keys: Vec<Vec<String>>,
    bodies: Vec<Vec<String>>,
    state: State,
}

fn fixtures(case: &Case) -> Fixtures {
    let now = OffsetDateTime::now_utc();
    let mut f = Fixtures {
        users: Vec::new(),
        keys: Vec::new(),
        bodies: Vec::new(),
        state: State::default(),
    };
    for (i, setup) in case.users.iter().enumerate() {
        let mut name = format!("bench-{i}");
        while name.len() < setup.name_len.unwrap_or(0) {
            name.push('x');
        }
        f.state.insert_user(User {
            name: name.clone(),
            path: "/".into(),
            id: oracle::new_id("AIDA", 17),
            created: now,
        });
        let mut ids = Vec::new();
        let mut bodies = Vec::new();
        for (j, key) in setup.keys.iter().enumerate() {
            let body = corpus_keys()[(i + j) % corpus_keys().len()];
            let id = oracle::new_id("APKA", 16);
            if !key.deleted {
                f.state.insert_key(Key {
                    id: id.clone(),
                    user: name.clone(),
                    uploaded: body.to_string(),
                    rsa: RsaKey::parse(body).expect("corpus keys parse"),
                    status: key.status.to_string(),
                    uploaded_at: now,
                });
            }
            ids.push(id);
            bodies.push(body.to_string());
        }
        f.users.push(name);
        f.keys.push(ids);
        f.bodies.push(bodies);
    }
    f
}

/// What the embedded server sends for a prediction: status and body.
fn served(prediction: &Prediction) -> (u16, String) {
    let status = match &prediction.result {
        Ok(Success::Redirect { .. }) => 302,
        Ok(_) => 200,
        Err(e) => e.status,
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = oracle::envelope(prediction, &request_id).map_or_else(String::new, |e| e.render());
    (status, body)
}

/// Parses an answer the way `Client::send` does once the bytes are in.
fn parse(status: u16, body: &str) -> Response {
    Response {
        status,
        content_type: Some("text/xml".into()),
        request_id: None,
        location: None,
        body: classify_body(status, Some("text/xml"), body.as_bytes()).expect("the server's XML"),
    }
}

/// Generating one case (the 31 classes in turn).
#[divan::bench]
fn generate(bencher: Bencher) {
    let mut next = cases();
    bencher.bench_local(&mut next);
}

/// The request under test of one case, end to end without the network.
#[divan::bench]
fn request_under_test(bencher: Bencher) {
    let client = client();
    let mut next = cases();
    bencher
        .with_inputs(|| {
            let case = next();
            let fixtures = fixtures(&case);
            (case, fixtures)
        })
        .bench_local_values(|(case, mut f)| {
            let request = case.request(
                &f.users,
                &f.keys,
                &f.bodies,
                "bench-nobody",
                "/iam-conformance/bench/",
            );
            let signed = client.prepare(&request).expect("the request signs");
            let start = OffsetDateTime::now_utc();
            let prediction = oracle::handle(&mut f.state, &request.params, start);
            let (status, body) = served(&prediction);
            let response = parse(status, &body);
            let window = Window {
                start,
                end: OffsetDateTime::now_utc(),
            };
            let mut checker = Checker::new(Level::Messages);
            check_response(&mut checker, &prediction, &response, window);
            (signed, f, checker.results)
        });
}

/// Any other request of a case: encode, sign, parse the answer, read a field.
#[divan::bench]
fn other_request(bencher: Bencher) {
    let client = client();
    let request = Request::new(Operation::CreateUser).with("UserName", "iamc-abcdef-12-0");
    let mut state = State::default();
    let prediction = oracle::handle(&mut state, &request.params, OffsetDateTime::now_utc());
    let (status, body) = served(&prediction);
    bencher.bench_local(|| {
        let signed = client
            .prepare(black_box(&request))
            .expect("the request signs");
        let response = parse(status, black_box(&body));
        let id = response
            .xml()
            .and_then(|x| x.text_at("CreateUserResult/User/UserId"))
            .map(str::to_string);
        (signed, id)
    });
}
