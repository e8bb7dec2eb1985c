//! Signing in, and who is signed in (the top bar's corner).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::accounts::{get_session, SignIn, SignOut};
use crate::components::ErrorBox;

/// The sign-in form. Posts to the server function with or without JavaScript; on success
/// the server sets the session cookie and sends the browser on to `next`.
#[component]
pub fn SignInPage() -> impl IntoView {
    let query = use_query_map();
    let next = move || query.with(|q| q.get("next").unwrap_or_else(|| "/".into()));
    let sign_in = ServerAction::<SignIn>::new();
    view! {
        <Title text="Sign in" />
        <section class="sign-in">
            <h1>"Sign in"</h1>
            <ActionForm action=sign_in>
                <input type="hidden" name="next" prop:value=next />
                <label>"Name" <input name="name" autocomplete="username" required=true maxlength="64" /></label>
                <label>"Password" <input name="password" type="password" autocomplete="current-password" required=true maxlength="1024" /></label>
                <button type="submit">"Sign in"</button>
            </ActionForm>
            {move || sign_in.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox error=e /> })}
            <p class="muted small">"Accounts are made by whoever runs this server (inoculab user add)."</p>
        </section>
    }
}

/// The signed-in account's name and role with a sign-out button (nothing on a server
/// without sign-in).
#[component]
pub fn SessionBar() -> impl IntoView {
    // Asked again on every navigation: signing in and out move to another page without a
    // reload, and the bar must follow.
    let location = leptos_router::hooks::use_location();
    let session = Resource::new(move || location.pathname.get(), |_| get_session());
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                session.await.ok().flatten().map(|s| view! {
                    <span class="session" data-testid="session">
                        {format!("{} ({})", s.name, s.role.as_str())}
                        <ActionForm action=sign_out attr:class="inline">
                            <button type="submit" class="small">"Sign out"</button>
                        </ActionForm>
                    </span>
                })
            })}
        </Suspense>
    }
}
